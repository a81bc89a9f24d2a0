//! Storage shapes as traits, each backend written once behind them.
//!
//! - [`KeyValue`]: get, put, put-if-absent, delete and an ordered scan with a cursor
//!   (hello, messages). Backends: `memory:`, `sqlite:`, `postgres:`, `mysql:`, `redis:`,
//!   `dynamodb:`.
//! - [`log::Log`]: append-only streams with sequence numbers (chat history).
//! - [`pubsub::PubSub`]: publish/subscribe between replicas (chat fan-out).
//! - [`pool::SqlDatabase`]: a SQL pool with the service's own migrated schema (notes), for
//!   `sqlite:`, `postgres:`, `mysql:` (and `memory:` as in-process SQLite).
//!
//! A service never names a backend type: it asks [`open_key_value`] for an
//! `Arc<dyn KeyValue>` and the scheme of `storage.url` picks the backend, wrapped in
//! [`instrumented::Instrumented`] so every operation is timed, bounded and counted.

pub mod dynamodb;
pub mod instrumented;
pub mod log;
pub mod memory;
pub mod mysql;
pub mod pool;
pub mod postgres;
pub mod pubsub;
pub mod redis;
mod sql;
pub mod sqlite;

#[cfg(any(test, feature = "testing"))]
pub mod behaviour;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::config::StorageSettings;

/// The one error type of the storage layer. Backends map their native errors into it in one
/// function each, so callers decide on the kind, never on a driver's message.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The backend cannot be reached or did not answer in time. Temporary: the service answers
    /// `503 Service Unavailable` with `Retry-After`, and recovers by itself when the backend returns.
    #[error("storage backend is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The backend answered with an error that retrying will not fix. Maps to `500`.
    #[error("storage backend failed: {0}")]
    Backend(#[source] BoxError),
    /// `storage.url` names no backend this build knows, or is malformed. A start-up error.
    #[error("invalid storage url: {0}")]
    InvalidUrl(String),
}

/// Boxed error source kept inside [`StorageError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl StorageError {
    /// Whether retrying later can succeed (the caller answers 503 rather than 500).
    pub fn is_temporary(&self) -> bool {
        matches!(self, StorageError::Unavailable(_))
    }
}

/// One page of an ordered [`KeyValue::scan`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanPage {
    /// Entries in ascending byte order of their keys.
    pub entries: Vec<(String, Vec<u8>)>,
    /// The cursor for the next page: `Some` exactly when more entries follow.
    pub next: Option<String>,
}

impl ScanPage {
    /// The page for rows fetched with `LIMIT limit + 1` in key order: the extra row, when
    /// present, only tells that another page follows, and the cursor is the last key kept.
    ///
    /// ```
    /// use platform::storage::ScanPage;
    /// let rows = vec![("a".to_owned(), vec![]), ("b".to_owned(), vec![]), ("c".to_owned(), vec![])];
    /// let page = ScanPage::from_rows(rows, 2);
    /// assert_eq!(page.entries.len(), 2);
    /// assert_eq!(page.next.as_deref(), Some("b"));
    /// ```
    pub fn from_rows(mut rows: Vec<(String, Vec<u8>)>, limit: usize) -> ScanPage {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(|(key, _)| key.clone())
        } else {
            None
        };
        ScanPage {
            entries: rows,
            next,
        }
    }
}

impl std::fmt::Debug for dyn KeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyValue({})", self.backend())
    }
}

/// A key–value store: string keys, byte values, keys ordered by their bytes.
///
/// Every method is one round trip (or one transaction) to the backend; none retries by itself.
#[async_trait]
pub trait KeyValue: Send + Sync + 'static {
    /// The value stored under `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// Stores `value` under `key`, replacing any previous value.
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageError>;
    /// Stores `value` only when `key` is absent. Returns `true` when it stored it.
    async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool, StorageError>;
    /// Removes `key`. Returns `true` when it existed.
    async fn delete(&self, key: &str) -> Result<bool, StorageError>;
    /// Up to `limit` entries whose keys sort strictly after `after` (from the start when `None`).
    /// A `limit` of 0 is read as 1, so a page always makes progress.
    async fn scan(&self, after: Option<&str>, limit: usize) -> Result<ScanPage, StorageError>;
    /// Applies `writes` in order as one atomic change: every write or none, and readers see
    /// the store before the batch or after it, never in between. A [`BatchWrite::Insert`] whose
    /// key exists (before the batch, or through an earlier write of the same batch) cancels the
    /// whole batch: nothing is written and the answer is [`BatchOutcome::Conflict`].
    ///
    /// ```no_run
    /// # async fn demo(store: &dyn platform::storage::KeyValue) -> Result<(), platform::storage::StorageError> {
    /// use platform::storage::{BatchOutcome, BatchWrite};
    /// // A record and its index entry, both or neither.
    /// let outcome = store
    ///     .write_batch(&[
    ///         BatchWrite::insert("record/42", b"{}"),
    ///         BatchWrite::put("index/0001-42", b""),
    ///     ])
    ///     .await?;
    /// assert!(matches!(outcome, BatchOutcome::Applied | BatchOutcome::Conflict { .. }));
    /// # Ok(()) }
    /// ```
    async fn write_batch(&self, writes: &[BatchWrite]) -> Result<BatchOutcome, StorageError>;
    /// A cheap round trip that proves the backend answers; feeds `/readyz`.
    async fn ping(&self) -> Result<(), StorageError>;
    /// The backend's name as it appears in metrics and `/info`: `memory`, `sqlite`, …
    fn backend(&self) -> &'static str;
}

/// One write of an atomic [`KeyValue::write_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchWrite {
    /// Stores `value` under `key`, replacing any previous value.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: Vec<u8>,
    },
    /// Stores `value` under `key`, which must be absent: a guard as well as a write. When the
    /// key exists, the whole batch is cancelled.
    Insert {
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
    },
    /// Removes `key`; a missing key is no error.
    Delete {
        /// The key.
        key: String,
    },
}

impl BatchWrite {
    /// A [`BatchWrite::Put`].
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> BatchWrite {
        BatchWrite::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    /// A [`BatchWrite::Insert`].
    pub fn insert(key: impl Into<String>, value: impl Into<Vec<u8>>) -> BatchWrite {
        BatchWrite::Insert {
            key: key.into(),
            value: value.into(),
        }
    }

    /// A [`BatchWrite::Delete`].
    pub fn delete(key: impl Into<String>) -> BatchWrite {
        BatchWrite::Delete { key: key.into() }
    }

    /// The key this write touches.
    pub fn key(&self) -> &str {
        match self {
            BatchWrite::Put { key, .. }
            | BatchWrite::Insert { key, .. }
            | BatchWrite::Delete { key } => key,
        }
    }
}

/// What [`KeyValue::write_batch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Every write of the batch is stored.
    Applied,
    /// The [`BatchWrite::Insert`] of `key` found it present: nothing of the batch was written.
    Conflict {
        /// The first insert's key that existed.
        key: String,
    },
}

/// Opens the key–value store named by `settings.url` for the namespace `namespace` (a table
/// `kv_<namespace>` in SQL, a key prefix in Redis, a partition key prefix in DynamoDB), creating its schema when `migrate` is true,
/// and wraps it in [`instrumented::Instrumented`].
///
/// ```no_run
/// # async fn demo() -> Result<(), platform::storage::StorageError> {
/// let settings = platform::config::StorageSettings::default();
/// let store = platform::storage::open_key_value(&settings, "hello", true).await?;
/// store.put("alice", b"1990-01-01").await?;
/// # Ok(()) }
/// ```
pub async fn open_key_value(
    settings: &StorageSettings,
    namespace: &str,
    migrate: bool,
) -> Result<Arc<dyn KeyValue>, StorageError> {
    let url = settings.url.expose();
    let scheme = url.split(':').next().unwrap_or_default();
    let options = ConnectOptions::from(settings);
    let store: Arc<dyn KeyValue> = match scheme {
        "memory" => {
            // In-process, it cannot stall: no timer on every call.
            let store = Arc::new(memory::MemoryKeyValue::default());
            return Ok(Arc::new(instrumented::Instrumented::new(store, None)));
        }
        "sqlite" => {
            Arc::new(sqlite::SqliteKeyValue::connect(url, namespace, migrate, &options).await?)
        }
        "postgres" | "postgresql" => {
            Arc::new(postgres::PostgresKeyValue::connect(url, namespace, migrate, &options).await?)
        }
        "mysql" | "mariadb" => {
            Arc::new(mysql::MysqlKeyValue::connect(url, namespace, migrate, &options).await?)
        }
        "redis" | "rediss" => {
            Arc::new(redis::RedisKeyValue::connect(url, namespace, &options).await?)
        }
        "dynamodb" => {
            Arc::new(dynamodb::DynamoDbKeyValue::connect(url, namespace, migrate, &options).await?)
        }
        other => {
            return Err(StorageError::InvalidUrl(format!(
                "unknown scheme `{other}:`; expected one of memory:, sqlite:, postgres:, mysql:, redis:, dynamodb:"
            )));
        }
    };
    Ok(Arc::new(instrumented::Instrumented::new(
        store,
        Some(options.operation_timeout),
    )))
}

/// The connection limits every backend honours, so a dead server gives a fast error, never a hang.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// Longest wait to open a connection or take one from the pool.
    pub connect_timeout: Duration,
    /// Longest time one operation may take end to end (enforced by `Instrumented`).
    pub operation_timeout: Duration,
    /// How SQLite gathers writes into one commit.
    pub group_commit: sqlite::GroupCommitOptions,
    /// Longest a schema creation may wait for the backend to finish it (a new DynamoDB table
    /// becoming `ACTIVE`).
    pub startup_timeout: Duration,
}

impl From<&StorageSettings> for ConnectOptions {
    fn from(settings: &StorageSettings) -> Self {
        ConnectOptions {
            max_connections: settings.max_connections,
            connect_timeout: settings.connect_timeout,
            operation_timeout: settings.operation_timeout,
            group_commit: sqlite::GroupCommitOptions {
                max_writes: settings.group_commit_max_writes.max(1),
                max_delay: settings.group_commit_max_delay,
                queue: settings.write_queue.max(1),
            },
            startup_timeout: settings.startup_timeout,
        }
    }
}

/// Checks a namespace before it becomes part of a table name or key prefix.
pub(crate) fn validate_namespace(namespace: &str) -> Result<(), StorageError> {
    let valid = !namespace.is_empty()
        && namespace.len() <= 48
        && namespace
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(StorageError::InvalidUrl(format!(
            "namespace `{namespace}` must be 1 to 48 of [a-z0-9_]"
        )))
    }
}
