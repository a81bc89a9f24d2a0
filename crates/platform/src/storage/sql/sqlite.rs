//! SQLite through sqlx, for the log and for [`SqlDatabase`](crate::storage::pool::SqlDatabase):
//! connecting, the error mapping, and this process's queue of writers to a file. (The key–value
//! store talks to SQLite through rusqlite instead: see [`crate::storage::sqlite`].)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use sqlx::error::DatabaseError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::storage::{ConnectOptions, StorageError};

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

/// The sqlx pool of `url` for the log and for [`SqlDatabase`](crate::storage::pool::SqlDatabase):
/// WAL with `synchronous = FULL`, foreign keys enforced, a busy timeout of `operation_timeout`,
/// one connection kept forever for an in-memory database.
pub(crate) async fn connect_pool(
    url: &str,
    options: &ConnectOptions,
) -> Result<SqlitePool, StorageError> {
    // FULL syncs the WAL on every commit: an acknowledged write is on disk.
    connect(url, options, SqliteSynchronous::Full).await
}

/// The pool of a [`ScratchFile`]: a file's pool (many connections, WAL readers beside the
/// writer) without its syncs, since nothing in it outlives the process anyway.
pub(crate) async fn connect_scratch_pool(
    scratch: &ScratchFile,
    options: &ConnectOptions,
) -> Result<SqlitePool, StorageError> {
    connect(&scratch.url(), options, SqliteSynchronous::Off).await
}

async fn connect(
    url: &str,
    options: &ConnectOptions,
    synchronous: SqliteSynchronous,
) -> Result<SqlitePool, StorageError> {
    let in_memory = is_in_memory(url);
    let connect_options = SqliteConnectOptions::from_str(url)
        .map_err(|error| StorageError::InvalidUrl(format!("sqlite url: {error}")))?
        .create_if_missing(true)
        .foreign_keys(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
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

/// A database file that lives and dies with the process: what `memory:` means for a
/// [`SqlDatabase`](crate::storage::pool::SqlDatabase).
///
/// SQLite's own in-memory database has a single connection, so every query of every request
/// would queue for it, and `memory:` would be slower than a file. A file in a directory of its
/// own under the system's temporary directory (`$TMPDIR`) gets a file's pool instead; it is not
/// synced, and it is removed when the last handle on it is dropped (a process killed with
/// `kill -9` leaves it behind in the temporary directory, like any other temporary file).
#[derive(Debug)]
pub(crate) struct ScratchFile {
    dir: PathBuf,
}

impl ScratchFile {
    /// Creates the scratch directory; the database file is created on the first connection.
    pub(crate) fn create() -> Result<ScratchFile, StorageError> {
        let dir = std::env::temp_dir().join(format!("platform-memory-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(|error| {
            StorageError::Backend(
                format!(
                    "`memory:` needs a writable temporary directory; cannot create {}: {error}",
                    dir.display()
                )
                .into(),
            )
        })?;
        Ok(ScratchFile { dir })
    }

    /// The `sqlite:` URL of the database file.
    pub(crate) fn url(&self) -> String {
        format!("sqlite://{}", self.dir.join("memory.db").display())
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        // Nothing to report to: the process is letting go of data it promised to lose.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `sqlite::memory:` and `?mode=memory` name a database that exists only in the process.
pub(crate) fn is_in_memory(url: &str) -> bool {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:" || params.split('&').any(|param| param == "mode=memory")
}

pub(crate) async fn create_parent_dir(file: &Path) -> Result<(), StorageError> {
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
    super::map_sqlx_error(error, is_temporary)
}

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code: another writer held the lock
/// past the busy timeout; it will let go.
fn is_temporary(database: &dyn DatabaseError) -> bool {
    database
        .code()
        .and_then(|code| code.parse::<u32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}
