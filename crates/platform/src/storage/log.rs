//! Append-only logs: per stream (a chat room), entries numbered 1, 2, 3… in the order they were
//! appended, whichever replica appended them; each stream keeps its last `retain` entries.
//!
//! Backends: `memory:` ([`memory`]), `sqlite:` ([`sqlite`]), `postgres:` ([`postgres`]) and
//! `redis:` ([`redis`], a Redis stream per log stream), chosen by the scheme of `storage.url` in
//! [`open_log`], which wraps them in [`instrumented::InstrumentedLog`]. MySQL has no log
//! backend: no service needs one yet.

pub mod instrumented;
pub mod memory;
pub mod postgres;
pub mod redis;
mod sql;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use super::StorageError;
use crate::config::StorageSettings;

/// One entry of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Its position in the stream, from 1, without gaps at append time.
    pub seq: u64,
    /// What was appended.
    pub data: Vec<u8>,
}

/// What a read answers: retained entries of one stream, in ascending order.
pub type Entries = Result<Vec<LogEntry>, StorageError>;

/// A set of append-only streams.
///
/// Every method is one round trip (or one transaction); none retries by itself. Stream names are
/// 1 to 128 bytes of `[A-Za-z0-9_.:-]`; backends refuse others with [`StorageError::Backend`].
#[async_trait]
pub trait Log: Send + Sync + 'static {
    /// Appends `entries` to `stream`, in order, atomically, and returns the sequence number of
    /// the first; the others follow it consecutively. Concurrent appends from any number of
    /// processes never get the same numbers. Entries beyond the last `retain` may be dropped.
    /// An empty `entries` appends nothing and returns the next sequence number.
    async fn append(&self, stream: &str, entries: &[Vec<u8>]) -> Result<u64, StorageError>;
    /// Up to `limit` retained entries of `stream` with a sequence number above `after`, in
    /// ascending order. An `after` older than what is retained starts at the oldest retained.
    async fn read_after(&self, stream: &str, after: u64, limit: usize) -> Entries;
    /// The last `limit` retained entries of `stream`, in ascending order.
    async fn read_last(&self, stream: &str, limit: usize) -> Entries;
    /// A cheap round trip that proves the backend answers; feeds `/readyz`.
    async fn ping(&self) -> Result<(), StorageError>;
    /// The backend's name in metrics and `/info`.
    fn backend(&self) -> &'static str;
}

impl std::fmt::Debug for dyn Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Log({})", self.backend())
    }
}

/// Checks a stream name before it becomes part of a key or a row.
pub(crate) fn validate_stream(stream: &str) -> Result<(), StorageError> {
    let valid = !stream.is_empty()
        && stream.len() <= 128
        && stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(StorageError::Backend(
            format!("log stream name `{stream}` must be 1 to 128 of [A-Za-z0-9_.:-]").into(),
        ))
    }
}

/// Checks a read's stream name, and says whether the read wants any entries: one of `limit` 0
/// answers nothing at once, without a round trip.
pub(crate) fn validate_read(stream: &str, limit: usize) -> Result<bool, StorageError> {
    validate_stream(stream)?;
    Ok(limit > 0)
}

/// Opens the log named by `settings.url` for `namespace`, keeping the last `retain` entries of
/// each stream, creating its schema when `migrate` is true.
///
/// ```
/// # async fn demo() -> Result<(), platform::storage::StorageError> {
/// let settings = platform::config::StorageSettings {
///     url: platform::config::SecretUrl::new("memory:"),
///     ..Default::default()
/// };
/// let log = platform::storage::log::open_log(&settings, "chat", 100, true).await?;
/// let first = log.append("lobby", &[b"hi".to_vec(), b"there".to_vec()]).await?;
/// assert_eq!(first, 1);
/// assert_eq!(log.read_after("lobby", 1, 10).await?[0].data, b"there");
/// # Ok(()) }
/// ```
pub async fn open_log(
    settings: &StorageSettings,
    namespace: &str,
    retain: usize,
    migrate: bool,
) -> Result<Arc<dyn Log>, StorageError> {
    super::validate_namespace(namespace)?;
    let url = settings.url.expose();
    let scheme = url.split(':').next().unwrap_or_default();
    let options = super::ConnectOptions::from(settings);
    let log: Arc<dyn Log> = match scheme {
        "memory" => {
            // In-process, it cannot stall: no timer on every call.
            let log = Arc::new(memory::MemoryLog::new(retain));
            return Ok(Arc::new(instrumented::InstrumentedLog::new(log, None)));
        }
        "sqlite" => {
            Arc::new(sqlite::SqliteLog::connect(url, namespace, retain, migrate, &options).await?)
        }
        "postgres" | "postgresql" => Arc::new(
            postgres::PostgresLog::connect(url, namespace, retain, migrate, &options).await?,
        ),
        "redis" | "rediss" => {
            Arc::new(redis::RedisLog::connect(url, namespace, retain, &options).await?)
        }
        other => {
            return Err(StorageError::InvalidUrl(format!(
                "the log has no `{other}:` backend (MySQL has none either); \
                 expected one of memory:, sqlite:, postgres:, redis:"
            )));
        }
    };
    Ok(Arc::new(instrumented::InstrumentedLog::new(
        log,
        Some(options.operation_timeout),
    )))
}
