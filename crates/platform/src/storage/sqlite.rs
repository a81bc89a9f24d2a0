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
//! - [x] atomic batches (a savepoint inside the group's transaction)
//! - [x] durability: WAL journal with `synchronous = FULL`, and a write is acknowledged only
//!   once the commit that holds it has synced, so it survives `kill -9` and power loss
//! - [x] schema creation (`migrate`): table `kv_<namespace>`
//! - [ ] sharing between hosts: one file on one machine
//!
//! The driver is rusqlite, called directly rather than through sqlx's worker thread per
//! connection. Writes go to the file's one writer thread, which commits them in groups
//! ([`group_commit`]). Reads run on the calling thread on a pooled read connection: in WAL mode
//! a reader never waits for the writer, and a point read costs microseconds, less than a hop to
//! another thread and back.

mod group_commit;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use sqlx::sqlite::SqliteConnectOptions;

use self::group_commit::GroupCommit;
pub use self::group_commit::GroupCommitOptions;
use super::sql::sqlite::{create_parent_dir, is_in_memory};
use super::sql::{Dialect, Statements};
use super::{
    BatchOutcome, BatchWrite, ConnectOptions, KeyValue, ScanPage, StorageError, validate_namespace,
};

/// A key–value namespace stored as the table `kv_<namespace>` of one SQLite database.
#[derive(Clone)]
pub struct SqliteKeyValue {
    file: SqliteFile,
    sql: Arc<Statements>,
}

/// One SQLite database as this process talks to it: reads on the calling thread from pooled
/// read connections, writes through the file's group-commit writer. The key–value store and
/// the log ([`SqliteLog`](crate::storage::log::sqlite::SqliteLog)) are built on it, and so is a
/// service's own schema on SQLite
/// ([`SqlDatabase::connections`](crate::storage::pool::SqlDatabase::connections)).
///
/// Cloning shares the connections.
///
/// ```no_run
/// # async fn example() -> Result<(), platform::storage::StorageError> {
/// use platform::config::StorageSettings;
/// use platform::storage::ConnectOptions;
/// use platform::storage::sqlite::{Durability, SqliteFile};
///
/// let options = ConnectOptions::from(&StorageSettings::default());
/// let file = SqliteFile::open("sqlite://./data/app.db", &options, Durability::Synced).await?;
/// file.write(|connection| connection.execute_batch("CREATE TABLE IF NOT EXISTS t (n INTEGER)")).await?;
/// file.write(|connection| connection.execute("INSERT INTO t VALUES (1)", []).map(drop)).await?;
/// let count: i64 = file.read(|connection| connection.query_row("SELECT count(*) FROM t", [], |row| row.get(0)))?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteFile {
    writer: GroupCommit,
    readers: Arc<Readers>,
}

impl std::fmt::Debug for SqliteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteFile").finish_non_exhaustive()
    }
}

/// Whether a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = FULL`: a commit that returned is on disk (every `sqlite:` URL).
    Synced,
    /// `synchronous = OFF`: for a scratch file whose content dies with the process anyway.
    Unsynced,
}

impl SqliteFile {
    /// Opens (creating when missing) the database named by `url`, with a busy timeout of
    /// `options.operation_timeout` and `options.group_commit` for its writer.
    pub async fn open(
        url: &str,
        options: &ConnectOptions,
        durability: Durability,
    ) -> Result<SqliteFile, StorageError> {
        let file = Database::of(url)?;
        // Names the writer and checkpointer threads.
        let name = match &file {
            Database::File(path) => {
                create_parent_dir(path).await?;
                path.file_stem().map_or_else(
                    || "file".to_owned(),
                    |stem| stem.to_string_lossy().into_owned(),
                )
            }
            Database::Memory => "memory".to_owned(),
        };
        let busy_timeout = options.operation_timeout;
        let Connections {
            writer,
            checkpointer,
            readers,
        } = tokio::task::spawn_blocking(move || open_connections(&file, busy_timeout, durability))
            .await
            .map_err(|error| StorageError::Backend(Box::new(error)))??;
        Ok(SqliteFile {
            writer: GroupCommit::start(writer, checkpointer, options.group_commit, &name)?,
            readers: Arc::new(readers),
        })
    }

    /// Runs `read` on the calling thread on a read connection. In WAL mode it sees the last
    /// commit and never waits for the writer; it must not take long, since it holds the thread.
    pub fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StorageError> {
        self.readers.read(read)
    }

    /// Runs `work` in the writer's next group commit and answers once that commit returned
    /// (on disk, for [`Durability::Synced`]). `work` runs in a savepoint of its own: returning
    /// an error undoes what it wrote, and fails it alone.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.writer.write(work).await
    }

    /// Lets go of the file: later reads fail, and the writer closes once its queue is done.
    pub fn close(&self) {
        self.readers.close();
    }

    /// Writes waiting for the writer thread (what the tests of stores on the file wait for).
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.writer.queued()
    }

    /// Commits the writer made so far, each holding one group of writes.
    #[cfg(test)]
    pub(crate) fn commits(&self) -> u64 {
        self.writer.commits()
    }
}

impl std::fmt::Debug for SqliteKeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteKeyValue")
            .field("table", &self.sql.table)
            .finish_non_exhaustive()
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
        let store = SqliteKeyValue {
            file: SqliteFile::open(url, options, Durability::Synced).await?,
            sql: Arc::new(Statements::on_conflict(
                &format!("kv_{namespace}"),
                &Dialect::SQLITE,
            )),
        };
        if migrate {
            let sql = store.sql.clone();
            store
                .file
                .write(move |connection| connection.execute(&sql.create, []).map(drop))
                .await?;
        }
        Ok(store)
    }

    /// Drops the namespace's table and everything in it: for test clean-up and decommissioning.
    pub async fn drop_namespace(&self) -> Result<(), StorageError> {
        let sql = self.sql.clone();
        self.file
            .write(move |connection| {
                for drop in &sql.drop {
                    connection.execute(drop, [])?;
                }
                Ok(())
            })
            .await
    }

    /// Lets go of the file: later calls fail. Connections close once the queued writes are done.
    pub async fn close(&self) {
        self.file.close();
    }
}

/// Where the database is: a file, or an in-process database that lives with its one connection.
#[derive(Debug, Clone)]
enum Database {
    File(PathBuf),
    Memory,
}

impl Database {
    fn of(url: &str) -> Result<Database, StorageError> {
        if is_in_memory(url) {
            return Ok(Database::Memory);
        }
        // The same reading of the URL as `SqlDatabase`'s sqlx pool.
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|error| StorageError::InvalidUrl(format!("sqlite url: {error}")))?;
        Ok(Database::File(options.get_filename().to_path_buf()))
    }
}

/// A store's connections to its database.
struct Connections {
    writer: Arc<Mutex<Connection>>,
    /// The checkpointer's own connection (a file's WAL only).
    checkpointer: Option<Connection>,
    readers: Readers,
}

/// Opens the write connection (which turns WAL on), the checkpointer's and the readers' side.
fn open_connections(
    database: &Database,
    busy_timeout: Duration,
    durability: Durability,
) -> Result<Connections, StorageError> {
    match database {
        Database::Memory => {
            let connection = Connection::open_in_memory().map_err(map_rusqlite_error)?;
            configure(&connection, busy_timeout, durability).map_err(map_rusqlite_error)?;
            let shared = Arc::new(Mutex::new(connection));
            Ok(Connections {
                writer: shared.clone(),
                checkpointer: None,
                readers: Readers::Shared(shared),
            })
        }
        Database::File(path) => {
            let writer = Connection::open(path).map_err(map_rusqlite_error)?;
            configure(&writer, busy_timeout, durability).map_err(map_rusqlite_error)?;
            // Persistent in the file: set once by the writer, every reader sees it.
            writer
                .pragma_update(None, "journal_mode", "wal")
                .map_err(map_rusqlite_error)?;
            // The checkpointer thread checkpoints; the writer only when it falls far behind.
            writer
                .pragma_update(
                    None,
                    "wal_autocheckpoint",
                    group_commit::WRITER_AUTOCHECKPOINT_PAGES,
                )
                .map_err(map_rusqlite_error)?;
            let checkpointer = Connection::open(path).map_err(map_rusqlite_error)?;
            configure(&checkpointer, busy_timeout, durability).map_err(map_rusqlite_error)?;
            let readers = Readers::Pool {
                path: path.clone(),
                busy_timeout,
                idle: Mutex::new(Vec::new()),
                closed: std::sync::atomic::AtomicBool::new(false),
            };
            Ok(Connections {
                writer: Arc::new(Mutex::new(writer)),
                checkpointer: Some(checkpointer),
                readers,
            })
        }
    }
}

/// Every connection's settings: FULL syncs the WAL on every commit, so a commit that returned
/// is on disk; the busy timeout bounds the wait for another process's lock.
fn configure(
    connection: &Connection,
    busy_timeout: Duration,
    durability: Durability,
) -> rusqlite::Result<()> {
    connection.busy_timeout(busy_timeout)?;
    let synchronous = match durability {
        Durability::Synced => "FULL",
        Durability::Unsynced => "OFF",
    };
    connection.pragma_update(None, "synchronous", synchronous)?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// Read connections. A read runs on the calling thread: it takes an idle connection (or opens
/// one), reads, and puts it back. As many connections exist as reads ever ran at once, which
/// is at most the runtime's worker threads, since a read never awaits.
enum Readers {
    Pool {
        path: PathBuf,
        busy_timeout: Duration,
        idle: Mutex<Vec<Connection>>,
        closed: std::sync::atomic::AtomicBool,
    },
    /// An in-memory database has one connection, shared with the writer.
    Shared(Arc<Mutex<Connection>>),
}

/// Idle read connections kept; more are closed after use.
const MAX_IDLE_READERS: usize = 16;

impl Readers {
    fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StorageError> {
        match self {
            Readers::Shared(connection) => {
                let connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
                read(&connection).map_err(map_rusqlite_error)
            }
            Readers::Pool {
                path,
                busy_timeout,
                idle,
                closed,
            } => {
                if closed.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(StorageError::Unavailable("the store is closed".into()));
                }
                let pooled = idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
                let connection = match pooled {
                    Some(connection) => connection,
                    None => open_reader(path, *busy_timeout).map_err(map_rusqlite_error)?,
                };
                let result = read(&connection).map_err(map_rusqlite_error);
                let mut idle = idle.lock().unwrap_or_else(PoisonError::into_inner);
                if idle.len() < MAX_IDLE_READERS {
                    idle.push(connection);
                }
                result
            }
        }
    }

    fn close(&self) {
        if let Readers::Pool { idle, closed, .. } = self {
            closed.store(true, std::sync::atomic::Ordering::Relaxed);
            idle.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }
}

fn open_reader(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // A reader never commits, so its `synchronous` setting does not matter.
    configure(&connection, busy_timeout, Durability::Synced)?;
    connection.pragma_update(None, "query_only", "ON")?;
    Ok(connection)
}

#[async_trait]
impl KeyValue for SqliteKeyValue {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.file.read(|connection| {
            connection
                .prepare_cached(&self.sql.get)?
                .query_row([key], |row| row.get(0))
                .optional()
        })
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        let (sql, key, value) = (self.sql.clone(), key.to_owned(), value.to_vec());
        self.file
            .write(move |connection| {
                connection
                    .prepare_cached(&sql.put)?
                    .execute(params![key, value])
                    .map(drop)
            })
            .await
    }

    async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool, StorageError> {
        let (sql, key, value) = (self.sql.clone(), key.to_owned(), value.to_vec());
        self.file
            .write(move |connection| {
                let stored = connection
                    .prepare_cached(&sql.put_if_absent)?
                    .execute(params![key, value])?;
                Ok(stored == 1)
            })
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        let (sql, key) = (self.sql.clone(), key.to_owned());
        self.file
            .write(move |connection| {
                let deleted = connection.prepare_cached(&sql.delete)?.execute([key])?;
                Ok(deleted == 1)
            })
            .await
    }

    /// `limit` is clamped to at least 1, as in every backend.
    async fn scan(&self, after: Option<&str>, limit: usize) -> Result<ScanPage, StorageError> {
        let limit = limit.max(1);
        let fetch = super::sql::fetch_limit(limit);
        let rows = self.file.read(|connection| {
            let entry = |row: &rusqlite::Row<'_>| Ok((row.get(0)?, row.get(1)?));
            match after {
                Some(after) => connection
                    .prepare_cached(&self.sql.scan_after)?
                    .query_map(params![after, fetch], entry)?
                    .collect::<rusqlite::Result<Vec<(String, Vec<u8>)>>>(),
                None => connection
                    .prepare_cached(&self.sql.scan_first)?
                    .query_map([fetch], entry)?
                    .collect(),
            }
        })?;
        Ok(ScanPage::from_rows(rows, limit))
    }

    async fn write_batch(&self, writes: &[BatchWrite]) -> Result<BatchOutcome, StorageError> {
        let (sql, writes) = (self.sql.clone(), writes.to_vec());
        self.file
            .write(move |connection| {
                // A savepoint of its own, so a conflict undoes the batch and still answers Ok.
                connection.execute_batch("SAVEPOINT batch")?;
                let outcome = apply_batch(connection, &sql, &writes);
                let end = match outcome {
                    Ok(BatchOutcome::Applied) => "RELEASE batch",
                    _ => "ROLLBACK TO batch; RELEASE batch",
                };
                connection.execute_batch(end)?;
                outcome
            })
            .await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.file
            .read(|connection| connection.query_row("SELECT 1", [], |_| Ok(())))
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

fn apply_batch(
    connection: &Connection,
    sql: &Statements,
    writes: &[BatchWrite],
) -> rusqlite::Result<BatchOutcome> {
    for write in writes {
        match write {
            BatchWrite::Put { key, value } => {
                connection
                    .prepare_cached(&sql.put)?
                    .execute(params![key, value])?;
            }
            BatchWrite::Insert { key, value } => {
                let stored = connection
                    .prepare_cached(&sql.put_if_absent)?
                    .execute(params![key, value])?;
                if stored == 0 {
                    return Ok(BatchOutcome::Conflict { key: key.clone() });
                }
            }
            BatchWrite::Delete { key } => {
                connection.prepare_cached(&sql.delete)?.execute([key])?;
            }
        }
    }
    Ok(BatchOutcome::Applied)
}

/// The one place rusqlite errors become [`StorageError`] kinds.
pub(crate) fn map_rusqlite_error(error: rusqlite::Error) -> StorageError {
    if is_temporary(&error) {
        StorageError::Unavailable(Box::new(error))
    } else {
        StorageError::Backend(Box::new(error))
    }
}

/// Busy or locked (another writer held the lock past the busy timeout; it will let go), and
/// the file that cannot be opened, read or written for now (a full disk, a failing device).
fn is_temporary(error: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode;
    match error {
        rusqlite::Error::SqliteFailure(failure, _) => matches!(
            failure.code,
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::CannotOpen
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn temp_file() -> PathBuf {
        std::env::temp_dir().join(format!("platform-group-{}.db", uuid::Uuid::new_v4()))
    }

    fn options(group_commit: GroupCommitOptions) -> ConnectOptions {
        ConnectOptions {
            max_connections: 4,
            connect_timeout: Duration::from_secs(2),
            // Long enough that the writer outwaits the test's own lock on a loaded machine.
            operation_timeout: Duration::from_secs(60),
            startup_timeout: Duration::from_secs(30),
            group_commit,
        }
    }

    fn remove(file: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = file.to_path_buf().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }

    /// Waits until `store`'s writer has `count` writes queued behind the one it holds.
    async fn queued(store: &SqliteKeyValue, count: usize) {
        tokio::time::timeout(Duration::from_secs(30), async {
            while store.file.writer.queued() < count {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the writes never queued");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_queued_behind_a_commit_share_the_next_one_and_a_failing_write_fails_alone() {
        let file = temp_file();
        let url = format!("sqlite://{}", file.display());
        let group = GroupCommitOptions {
            max_writes: 256,
            max_delay: Duration::from_secs(60),
            queue: 1024,
        };
        let store = SqliteKeyValue::connect(&url, "group", true, &options(group))
            .await
            .unwrap();
        // Another process's connection: a trigger that refuses one key, and a write lock
        // that holds the writer while 64 writes queue up.
        let other = Connection::open(&file).unwrap();
        other
            .execute_batch(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON kv_group \
                 WHEN NEW.key = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END; \
                 BEGIN IMMEDIATE;",
            )
            .unwrap();
        let commits_before = store.file.writer.commits();
        let keys: Vec<String> = (0..63)
            .map(|n| format!("key-{n:02}"))
            .chain(["poison".to_owned()])
            .collect();
        let writes: Vec<_> = keys
            .iter()
            .map(|key| {
                let store = store.clone();
                let key = key.clone();
                tokio::spawn(async move { store.put(&key, key.as_bytes()).await })
            })
            .collect();
        // The writer holds one write, waiting for the lock; the other 63 queue behind it.
        queued(&store, 63).await;
        other.execute_batch("COMMIT").unwrap();

        let mut results = Vec::new();
        for write in writes {
            results.push(write.await.unwrap());
        }
        for (key, result) in keys.iter().zip(&results) {
            if key == "poison" {
                let error = result.as_ref().expect_err("the refused write must fail");
                assert!(!error.is_temporary(), "{error:?}");
            } else {
                assert!(result.is_ok(), "{key}: {result:?}");
            }
        }
        assert_eq!(
            store.file.writer.commits() - commits_before,
            1,
            "the 64 writes were one group commit"
        );
        // What a reader from outside sees: every acknowledged write, and not the refused one.
        let stored: Vec<String> = other
            .prepare("SELECT key FROM kv_group ORDER BY key")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(stored, keys[..63]);
        drop(other);
        store.close().await;
        remove(&file);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checkpointer_copies_the_wal_into_the_database_file_off_the_write_path() {
        let file = temp_file();
        let url = format!("sqlite://{}", file.display());
        let store = SqliteKeyValue::connect(&url, "ckpt", true, &options(Default::default()))
            .await
            .unwrap();
        let writes = group_commit::CHECKPOINT_AFTER_WRITES;
        let tasks: Vec<_> = (0..writes)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move { store.put(&format!("k{n:04}"), b"v").await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        tokio::time::timeout(Duration::from_secs(30), async {
            while store.file.writer.checkpoints() == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the checkpointer never ran");
        // The database file alone, without its WAL, holds every write: they were checkpointed.
        // The writer's own threshold is far above what these writes filled, so it was not it.
        let copy = temp_file();
        std::fs::copy(&file, &copy).unwrap();
        let rows: u64 = Connection::open(&copy)
            .unwrap()
            .query_row("SELECT count(*) FROM kv_ckpt", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, writes);
        store.close().await;
        remove(&file);
        remove(&copy);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_is_cut_at_its_largest_size() {
        let file = temp_file();
        let url = format!("sqlite://{}", file.display());
        let group = GroupCommitOptions {
            max_writes: 8,
            max_delay: Duration::from_secs(60),
            queue: 1024,
        };
        let store = SqliteKeyValue::connect(&url, "cut", true, &options(group))
            .await
            .unwrap();
        let other = Connection::open(&file).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let commits_before = store.file.writer.commits();
        let writes: Vec<_> = (0..32)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move { store.put(&format!("k{n}"), b"v").await })
            })
            .collect();
        queued(&store, 31).await;
        other.execute_batch("COMMIT").unwrap();
        for write in writes {
            write.await.unwrap().unwrap();
        }
        // 32 writes in groups of at most 8.
        assert_eq!(store.file.writer.commits() - commits_before, 4);
        drop(other);
        store.close().await;
        remove(&file);
    }
}
