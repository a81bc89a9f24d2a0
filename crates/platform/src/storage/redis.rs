//! `redis:` — a key–value store in Redis, for several instances sharing data in memory.
//!
//! URL: `redis://[user:password@]host:6379[/db]`. `rediss://` needs redis-rs's TLS feature,
//! which this build leaves out, so it is rejected as an invalid URL.
//!
//! Layout of a namespace: values in the hash `<namespace>:kv`, keys in the sorted set
//! `<namespace>:keys` with every score 0, so `ZRANGEBYLEX` walks them in byte order. Every
//! write changes both in one Lua script, which Redis runs atomically.
//!
//! Capabilities:
//! - [x] get, put, put-if-absent, delete
//! - [x] ordered scan with a cursor (`ZRANGEBYLEX` compares bytes)
//! - [x] atomic put-if-absent (`HSETNX` inside a script)
//! - [x] atomic batches: one script checks every insert, then writes (a script runs alone, as
//!   `MULTI`/`EXEC` would, but can also cancel the batch on a conflict)
//! - [ ] durability: whatever the server's `appendfsync` promises; by default a second of writes
//!   can be lost
//! - [x] schema creation: nothing to create; `migrate` does not apply
//! - [x] fails fast while the server is down and reconnects by itself when it returns

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, Script, ServerErrorKind};

use super::{
    BatchOutcome, BatchWrite, ConnectOptions, KeyValue, ScanPage, StorageError, validate_namespace,
};

/// Reconnection attempts per failed connection before an operation gets the error. redis-rs
/// 1.x waits 100 ms (with jitter) before the first retry, so one retry fits the operation
/// timeout and rides out a restart; a longer outage fails fast and the next call reconnects.
const RECONNECT_RETRIES: usize = 1;

/// Upper bound of the wait between reconnection attempts.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(2);

/// A key–value namespace stored as a hash and a sorted set in one Redis database.
#[derive(Clone)]
pub struct RedisKeyValue {
    connection: ConnectionManager,
    values_key: String,
    keys_key: String,
    scripts: Scripts,
}

#[derive(Clone)]
struct Scripts {
    put: Script,
    put_if_absent: Script,
    delete: Script,
    scan: Script,
    write_batch: Script,
}

impl std::fmt::Debug for RedisKeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKeyValue")
            .field("values_key", &self.values_key)
            .finish_non_exhaustive()
    }
}

/// Stores `ARGV[2]` under `ARGV[1]`, in the hash `KEYS[1]` and the key index `KEYS[2]`.
const PUT: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
";

/// Stores `ARGV[2]` under `ARGV[1]` only when absent; returns 1 when it stored it.
const PUT_IF_ABSENT: &str = r"
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
  return 1
end
return 0
";

/// Removes `ARGV[1]`; returns 1 when it existed.
const DELETE: &str = r"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
return 0
";

/// Up to `ARGV[2]` keys after the lexical bound `ARGV[1]` and their values, read in one atomic
/// step so a concurrent delete cannot leave a key without its value. One `HGET` per key
/// rather than `HMGET` with `unpack`, which overflows Lua's stack on large pages.
const SCAN: &str = r"
local keys = redis.call('ZRANGEBYLEX', KEYS[2], ARGV[1], '+', 'LIMIT', 0, ARGV[2])
local values = {}
for i, key in ipairs(keys) do
  values[i] = redis.call('HGET', KEYS[1], key)
end
return {keys, values}
";

/// ARGV is `op, key, value` per write (`P` put, `I` insert, `D` delete; a delete's value is
/// empty). A script runs alone on the server, so the whole batch is atomic: the first pass
/// checks every insert against the hash as the earlier writes would leave it, and only a batch
/// that passes is written. Answers `{1, ''}` when applied, `{0, key}` on an insert's conflict.
const WRITE_BATCH: &str = r"
local present = {}
for i = 1, #ARGV, 3 do
  local op, key = ARGV[i], ARGV[i + 1]
  if op == 'I' then
    local exists = present[key]
    if exists == nil then
      exists = redis.call('HEXISTS', KEYS[1], key) == 1
    end
    if exists then
      return {0, key}
    end
  end
  present[key] = op ~= 'D'
end
for i = 1, #ARGV, 3 do
  local op, key = ARGV[i], ARGV[i + 1]
  if op == 'D' then
    redis.call('HDEL', KEYS[1], key)
    redis.call('ZREM', KEYS[2], key)
  else
    redis.call('HSET', KEYS[1], key, ARGV[i + 2])
    redis.call('ZADD', KEYS[2], 0, key)
  end
end
return {1, ''}
";

impl RedisKeyValue {
    /// Connects to the server named by `url` for `namespace`. Fails within `connect_timeout`
    /// when the server is down; afterwards the connection is re-established by itself.
    pub async fn connect(
        url: &str,
        namespace: &str,
        options: &ConnectOptions,
    ) -> Result<RedisKeyValue, StorageError> {
        validate_namespace(namespace)?;
        let connection = connection_manager(url, options).await?;
        Ok(RedisKeyValue {
            connection,
            values_key: format!("{namespace}:kv"),
            keys_key: format!("{namespace}:keys"),
            scripts: Scripts {
                put: Script::new(PUT),
                put_if_absent: Script::new(PUT_IF_ABSENT),
                delete: Script::new(DELETE),
                scan: Script::new(SCAN),
                write_batch: Script::new(WRITE_BATCH),
            },
        })
    }

    /// Deletes the namespace's hash and key index: for test clean-up and decommissioning.
    pub async fn drop_namespace(&self) -> Result<(), StorageError> {
        let mut connection = self.connection.clone();
        redis::cmd("DEL")
            .arg(&self.values_key)
            .arg(&self.keys_key)
            .query_async::<()>(&mut connection)
            .await
            .map_err(map_redis_error)
    }
}

/// A connection manager for `url` with the platform's timeouts and reconnection policy; fails
/// within `connect_timeout` when the server is down. Shared with the log and pub/sub backends.
pub(crate) async fn connection_manager(
    url: &str,
    options: &ConnectOptions,
) -> Result<ConnectionManager, StorageError> {
    // The parser's message never repeats the URL, so the password cannot leak through it.
    let client = redis::Client::open(url)
        .map_err(|error| StorageError::InvalidUrl(format!("redis url: {error}")))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(Some(options.operation_timeout))
        .set_number_of_retries(RECONNECT_RETRIES)
        .set_max_delay(RECONNECT_MAX_DELAY);
    // The first connection retries with back-off inside `new_with_config`; bound the whole
    // of it, so start-up against a dead server fails in `connect_timeout`.
    tokio::time::timeout(
        options.connect_timeout,
        ConnectionManager::new_with_config(client, config),
    )
    .await
    .map_err(|_| unavailable_after(options.connect_timeout))?
    .map_err(map_redis_error)
}

/// One `PING` on `connection`: the health check of every Redis backend.
pub(crate) async fn ping(connection: &ConnectionManager) -> Result<(), StorageError> {
    redis::cmd("PING")
        .query_async::<()>(&mut connection.clone())
        .await
        .map_err(map_redis_error)
}

fn unavailable_after(timeout: Duration) -> StorageError {
    StorageError::Unavailable(
        format!("redis did not accept a connection within {timeout:?}").into(),
    )
}

/// The one place Redis errors become [`StorageError`] kinds.
pub(crate) fn map_redis_error(error: RedisError) -> StorageError {
    let temporary = error.is_io_error()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_connection_dropped()
        // The server is loading its dataset or failing over; it answers again shortly.
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading | ServerErrorKind::TryAgain | ServerErrorKind::MasterDown
            )
        );
    if temporary {
        StorageError::Unavailable(Box::new(error))
    } else {
        StorageError::Backend(Box::new(error))
    }
}

#[async_trait]
impl KeyValue for RedisKeyValue {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let mut connection = self.connection.clone();
        redis::cmd("HGET")
            .arg(&self.values_key)
            .arg(key)
            .query_async(&mut connection)
            .await
            .map_err(map_redis_error)
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        let mut connection = self.connection.clone();
        self.scripts
            .put
            .key(&self.values_key)
            .key(&self.keys_key)
            .arg(key)
            .arg(value)
            .invoke_async::<()>(&mut connection)
            .await
            .map_err(map_redis_error)
    }

    async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool, StorageError> {
        let mut connection = self.connection.clone();
        let stored: i64 = self
            .scripts
            .put_if_absent
            .key(&self.values_key)
            .key(&self.keys_key)
            .arg(key)
            .arg(value)
            .invoke_async(&mut connection)
            .await
            .map_err(map_redis_error)?;
        Ok(stored == 1)
    }

    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        let mut connection = self.connection.clone();
        let deleted: i64 = self
            .scripts
            .delete
            .key(&self.values_key)
            .key(&self.keys_key)
            .arg(key)
            .invoke_async(&mut connection)
            .await
            .map_err(map_redis_error)?;
        Ok(deleted == 1)
    }

    /// `limit` is clamped to at least 1, as in every backend.
    async fn scan(&self, after: Option<&str>, limit: usize) -> Result<ScanPage, StorageError> {
        let limit = limit.max(1);
        let lower = match after {
            Some(after) => format!("({after}"),
            None => "-".to_owned(),
        };
        let mut connection = self.connection.clone();
        // One key past the page tells whether another page follows.
        let (keys, values): (Vec<String>, Vec<Option<Vec<u8>>>) = self
            .scripts
            .scan
            .key(&self.values_key)
            .key(&self.keys_key)
            .arg(lower)
            .arg(limit.saturating_add(1))
            .invoke_async(&mut connection)
            .await
            .map_err(map_redis_error)?;
        let more = keys.len() > limit;
        let next = if more {
            keys.get(limit - 1).cloned()
        } else {
            None
        };
        // The scripts keep hash and index in step, so a missing value means a key written by
        // something else; it is skipped rather than reported as an empty value.
        let entries = keys
            .into_iter()
            .zip(values)
            .take(limit)
            .filter_map(|(key, value)| value.map(|value| (key, value)))
            .collect();
        Ok(ScanPage { entries, next })
    }

    async fn write_batch(&self, writes: &[BatchWrite]) -> Result<BatchOutcome, StorageError> {
        let mut invocation = self.scripts.write_batch.prepare_invoke();
        invocation.key(&self.values_key).key(&self.keys_key);
        for write in writes {
            let (op, value): (&str, &[u8]) = match write {
                BatchWrite::Put { value, .. } => ("P", value),
                BatchWrite::Insert { value, .. } => ("I", value),
                BatchWrite::Delete { .. } => ("D", b""),
            };
            invocation.arg(op).arg(write.key()).arg(value);
        }
        let mut connection = self.connection.clone();
        let (applied, key): (i64, String) = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(map_redis_error)?;
        Ok(if applied == 1 {
            BatchOutcome::Applied
        } else {
            BatchOutcome::Conflict { key }
        })
    }

    async fn ping(&self) -> Result<(), StorageError> {
        ping(&self.connection).await
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}
