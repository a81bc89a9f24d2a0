//! SQLite through sqlx, for the pool [`SqlDatabase::pool`](crate::storage::pool::SqlDatabase::pool)
//! hands a service: connecting and the error mapping. Every store on SQLite (key–value, log,
//! `SqlDatabase`'s own statements and migrations) talks to SQLite through rusqlite instead: see
//! [`crate::storage::sqlite`]. Also what both share: reading the URL ([`is_in_memory`]), the
//! parent directory, and the [`ScratchFile`] behind `memory:`.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::error::DatabaseError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::storage::{ConnectOptions, StorageError};

/// The sqlx pool of `url` for [`SqlDatabase`](crate::storage::pool::SqlDatabase):
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
