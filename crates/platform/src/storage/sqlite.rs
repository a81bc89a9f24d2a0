//! `sqlite:` — a key–value store in one SQLite file, the default for a single instance.
//!
//! URLs: `sqlite://./data/hello.db` (relative to the working directory),
//! `sqlite:///abs/path.db`, or `sqlite::memory:` (lost on restart). The parent directory of the
//! file is created when missing.
//!
//! Capabilities:
//! - [x] get, put, put-if-absent, delete
//! - [x] ordered scan with a cursor: `TEXT` keys use the `BINARY` collation, which compares bytes
//! - [x] atomic put-if-absent (`INSERT … ON CONFLICT DO NOTHING`)
//! - [x] durability: WAL journal with `synchronous = FULL`, so an acknowledged write survives
//!   `kill -9` and power loss
//! - [x] schema creation (`migrate`): table `kv_<namespace>`
//! - [ ] sharing between hosts: one file on one machine
//!
//! Writers are serialised by SQLite, and within this process they queue first come, first
//! served ([`WriteQueue`]); a writer waits up to the operation timeout for its turn.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use sqlx::error::DatabaseError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::sql::Statements;
use super::{ConnectOptions, StorageError, validate_namespace};

/// A key–value namespace stored as the table `kv_<namespace>` of one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteKeyValue {
    pool: SqlitePool,
    writes: WriteQueue,
    sql: Statements,
}

/// This dialect's statements for the table `table`.
fn statements(table: &str) -> Statements {
    Statements {
        create: format!(
            "CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL)"
        ),
        drop: format!("DROP TABLE IF EXISTS {table}"),
        get: format!("SELECT value FROM {table} WHERE key = ?1"),
        put: format!(
            "INSERT INTO {table} (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        ),
        put_if_absent: format!(
            "INSERT INTO {table} (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING"
        ),
        delete: format!("DELETE FROM {table} WHERE key = ?1"),
        scan_first: format!("SELECT key, value FROM {table} ORDER BY key LIMIT ?1"),
        scan_after: format!("SELECT key, value FROM {table} WHERE key > ?1 ORDER BY key LIMIT ?2"),
    }
}

impl SqliteKeyValue {
    /// Opens (creating when missing) the database named by `url` and, when `migrate` is true,
    /// the table of `namespace`.
    pub async fn connect(
        url: &str,
        namespace: &str,
        migrate: bool,
        options: &ConnectOptions,
    ) -> Result<SqliteKeyValue, StorageError> {
        validate_namespace(namespace)?;
        let pool = connect_pool(url, options).await?;
        let store = SqliteKeyValue {
            pool,
            writes: WriteQueue::of(url),
            sql: statements(&format!("kv_{namespace}")),
        };
        if migrate {
            sqlx::query(&store.sql.create)
                .execute(&store.pool)
                .await
                .map_err(map_sqlx_error)?;
        }
        Ok(store)
    }

    /// Drops the namespace's table and everything in it: for test clean-up and decommissioning.
    pub async fn drop_namespace(&self) -> Result<(), StorageError> {
        sqlx::query(&self.sql.drop)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx_error)?;
        Ok(())
    }

    /// Closes every pooled connection, so the file can be removed.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Waits for this process's turn to write to the file (see [`WriteQueue`]).
    async fn write_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writes.turn().await
    }
}

/// This process's writers to one SQLite file, in a first-come, first-served queue.
///
/// SQLite lets one writer in at a time and makes the others poll for the lock (`busy_timeout`)
/// with a backoff of up to 100 ms between tries. Under steady concurrent writes a writer can
/// lose every race and reach the operation timeout while each write holds the lock for a few
/// milliseconds only: a 503 for a file that was never stuck. Queued here instead, a writer
/// waits for the writes ahead of it and no longer.
#[derive(Debug, Clone)]
pub(crate) struct WriteQueue(Arc<tokio::sync::Mutex<()>>);

impl WriteQueue {
    /// The queue of the file `url` names, shared by every store and log this process opens on
    /// it (an in-memory database has one connection and a queue of its own).
    pub(crate) fn of(url: &str) -> WriteQueue {
        static QUEUES: LazyLock<Mutex<HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>>> =
            LazyLock::new(Mutex::default);
        let file = SqliteConnectOptions::from_str(url)
            .ok()
            .filter(|_| !is_in_memory(url))
            .map(|options| options.get_filename().to_path_buf());
        let Some(file) = file else {
            return WriteQueue(Arc::default());
        };
        let file = std::fs::canonicalize(&file).unwrap_or(file);
        // A poisoned map is still whole: it only maps files to queues.
        let mut queues = QUEUES.lock().unwrap_or_else(PoisonError::into_inner);
        queues.retain(|_, queue| queue.strong_count() > 0);
        if let Some(queue) = queues.get(&file).and_then(Weak::upgrade) {
            return WriteQueue(queue);
        }
        let queue = Arc::default();
        queues.insert(file, Arc::downgrade(&queue));
        WriteQueue(queue)
    }

    /// Waits for the turn to write.
    pub(crate) async fn turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.lock().await
    }
}

/// The pool every SQLite store of `url` uses: WAL with `synchronous = FULL`, a busy timeout of
/// `operation_timeout`, one connection kept forever for an in-memory database. Shared with
/// the log backend, so both keep the same durability.
pub(crate) async fn connect_pool(
    url: &str,
    options: &ConnectOptions,
) -> Result<SqlitePool, StorageError> {
    let in_memory = is_in_memory(url);
    let connect_options = SqliteConnectOptions::from_str(url)
        .map_err(|error| StorageError::InvalidUrl(format!("sqlite url: {error}")))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL syncs the WAL on every commit: an acknowledged write is on disk.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(options.operation_timeout);
    if !in_memory {
        create_parent_dir(connect_options.get_filename()).await?;
    }

    let mut pool_options = SqlitePoolOptions::new().acquire_timeout(options.connect_timeout);
    pool_options = if in_memory {
        // Each connection to `:memory:` would see its own database, and the database dies
        // with its last connection, so keep exactly one open forever.
        pool_options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        pool_options.max_connections(options.max_connections.max(1))
    };
    pool_options
        .connect_with(connect_options)
        .await
        .map_err(map_sqlx_error)
}

/// `sqlite::memory:` and `?mode=memory` name a database that exists only in the process.
pub(super) fn is_in_memory(url: &str) -> bool {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:" || params.split('&').any(|param| param == "mode=memory")
}

pub(super) async fn create_parent_dir(file: &Path) -> Result<(), StorageError> {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            tokio::fs::create_dir_all(parent).await.map_err(|error| {
                StorageError::Backend(
                    format!("cannot create the directory {}: {error}", parent.display()).into(),
                )
            })
        }
        _ => Ok(()),
    }
}

/// The one place SQLite errors become [`StorageError`] kinds.
pub(crate) fn map_sqlx_error(error: sqlx::Error) -> StorageError {
    super::sql::map_sqlx_error(error, is_temporary)
}

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code: another writer held the lock
/// past the busy timeout; it will let go.
fn is_temporary(database: &dyn DatabaseError) -> bool {
    database
        .code()
        .and_then(|code| code.parse::<u32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

super::sql::impl_key_value_over_sqlx!(SqliteKeyValue, "sqlite");
