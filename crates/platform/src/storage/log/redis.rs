//! `redis:` — one Redis stream per log stream, for several instances sharing recent history.
//!
//! Keys of a stream `s` in namespace `n`: the Redis stream `{n:log:s}`, whose entry IDs are
//! `<seq>-0`, so IDs are the sequence numbers, and the counter `{n:log:s}:seq`, the number of
//! the last entry. The braces are a Cluster hash tag: both keys live in one slot, so the
//! scripts that touch both stay legal on a cluster.
//!
//! Every operation is one Lua script, which Redis runs atomically: `append` adds the count to
//! the counter and `XADD`s each entry under its number with `MAXLEN ~ retain`; the reads take
//! their lower bound from the counter, so they never return more than the last `retain`
//! entries even though the approximate `MAXLEN ~` may keep a few more in memory.
//!
//! Capabilities:
//! - [x] append (one script, consecutive numbers), read after, read last
//! - [x] retention: exact as seen by readers; memory holds at most about one stream node
//!   (100 entries by default) beyond `retain`
//! - [x] atomic numbering across processes (one script at a time per server)
//! - [ ] durability: whatever the server's `appendfsync` promises; the local test server keeps
//!   nothing on disk
//! - [x] schema creation: nothing to create; `migrate` does not apply
//! - [x] fails fast while the server is down and reconnects by itself when it returns

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;

use super::{Entries, Log, LogEntry, validate_read, validate_stream};
use crate::storage::redis::{connection_manager, map_redis_error};
use crate::storage::{ConnectOptions, StorageError, validate_namespace};

/// Appends `ARGV[2..]` under consecutive numbers after the counter `KEYS[2]`, keeping about
/// `ARGV[1]` entries in the stream `KEYS[1]`; returns the first number.
const APPEND: &str = r"
local n = #ARGV - 1
local last = redis.call('INCRBY', KEYS[2], n)
local first = last - n + 1
for i = 1, n do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1],
    string.format('%d-0', first + i - 1), 'd', ARGV[i + 1])
end
return first
";

/// Up to `ARGV[3]` entries of `KEYS[1]` from number `ARGV[1]` on, but none older than the
/// last `ARGV[2]`, as `{seq, data}` pairs with `seq` a decimal string.
const READ_FROM: &str = r"
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local from = math.max(tonumber(ARGV[1]), last - tonumber(ARGV[2]) + 1, 1)
if from > last then
  return {}
end
local entries = redis.call('XRANGE', KEYS[1], string.format('%d-0', from), '+', 'COUNT', ARGV[3])
local out = {}
for i, entry in ipairs(entries) do
  out[i] = {string.match(entry[1], '^%d+'), entry[2][2]}
end
return out
";

/// The streams of one namespace in one Redis database.
#[derive(Clone)]
pub struct RedisLog {
    connection: ConnectionManager,
    namespace: String,
    retain: usize,
    append: Script,
    read_from: Script,
}

impl std::fmt::Debug for RedisLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLog")
            .field("namespace", &self.namespace)
            .field("retain", &self.retain)
            .finish_non_exhaustive()
    }
}

impl RedisLog {
    /// Connects to the server named by `url` for `namespace`; each stream keeps its last
    /// `retain` entries (at least 1). Fails within `connect_timeout` when the server is down;
    /// afterwards the connection is re-established by itself.
    pub async fn connect(
        url: &str,
        namespace: &str,
        retain: usize,
        options: &ConnectOptions,
    ) -> Result<RedisLog, StorageError> {
        validate_namespace(namespace)?;
        let connection = connection_manager(url, options).await?;
        Ok(RedisLog {
            connection,
            namespace: namespace.to_owned(),
            retain: retain.max(1),
            append: Script::new(APPEND),
            read_from: Script::new(READ_FROM),
        })
    }

    /// The stream key and counter key of `stream`, sharing one hash tag.
    fn keys(&self, stream: &str) -> (String, String) {
        let entries = format!("{{{}:log:{stream}}}", self.namespace);
        let counter = format!("{entries}:seq");
        (entries, counter)
    }

    /// Up to `limit` entries numbered `from` or above, none older than the last `window`.
    async fn read_window(&self, stream: &str, from: u64, window: usize, limit: usize) -> Entries {
        let (entries, counter) = self.keys(stream);
        let mut connection = self.connection.clone();
        let rows: Vec<(String, Vec<u8>)> = self
            .read_from
            .key(entries)
            .key(counter)
            .arg(from)
            .arg(window)
            .arg(limit)
            .invoke_async(&mut connection)
            .await
            .map_err(map_redis_error)?;
        rows.into_iter()
            .map(|(seq, data)| {
                let seq = seq.parse().map_err(|_| {
                    StorageError::Backend(
                        format!("the redis stream holds the foreign entry id `{seq}`").into(),
                    )
                })?;
                Ok(LogEntry { seq, data })
            })
            .collect()
    }

    /// The number of the last entry of `stream` (0 before the first).
    async fn last(&self, stream: &str) -> Result<u64, StorageError> {
        let (_, counter) = self.keys(stream);
        let mut connection = self.connection.clone();
        let last: Option<u64> = redis::cmd("GET")
            .arg(counter)
            .query_async(&mut connection)
            .await
            .map_err(map_redis_error)?;
        Ok(last.unwrap_or(0))
    }

    /// Deletes every stream and counter of the namespace: for test clean-up and
    /// decommissioning. Walks the keyspace with `SCAN`, so it is slow on a large database.
    pub async fn drop_namespace(&self) -> Result<(), StorageError> {
        let mut connection = self.connection.clone();
        let pattern = format!("{{{}:log:*", self.namespace);
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await
                .map_err(map_redis_error)?;
            if !keys.is_empty() {
                redis::cmd("DEL")
                    .arg(&keys)
                    .query_async::<()>(&mut connection)
                    .await
                    .map_err(map_redis_error)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

#[async_trait]
impl Log for RedisLog {
    async fn append(&self, stream: &str, entries: &[Vec<u8>]) -> Result<u64, StorageError> {
        validate_stream(stream)?;
        if entries.is_empty() {
            return Ok(self.last(stream).await? + 1);
        }
        let (keys_entries, counter) = self.keys(stream);
        let mut invocation = self.append.key(keys_entries);
        invocation.key(counter).arg(self.retain);
        for data in entries {
            invocation.arg(data.as_slice());
        }
        let mut connection = self.connection.clone();
        invocation
            .invoke_async(&mut connection)
            .await
            .map_err(map_redis_error)
    }

    async fn read_after(&self, stream: &str, after: u64, limit: usize) -> Entries {
        if !validate_read(stream, limit)? {
            return Ok(Vec::new());
        }
        // Past 2^53 Lua's numbers are inexact; no stream gets there, so nothing is above it.
        const LUA_EXACT: u64 = 1 << 53;
        if after >= LUA_EXACT {
            return Ok(Vec::new());
        }
        self.read_window(stream, after + 1, self.retain, limit)
            .await
    }

    async fn read_last(&self, stream: &str, limit: usize) -> Entries {
        if !validate_read(stream, limit)? {
            return Ok(Vec::new());
        }
        // The newest `limit` retained entries are the window of the last `limit` of them.
        self.read_window(stream, 1, limit.min(self.retain), limit)
            .await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        crate::storage::redis::ping(&self.connection).await
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}
