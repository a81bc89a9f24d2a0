//! `sqlite:` — streams in two tables of one SQLite file, for a single instance.
//!
//! Tables: `log_<namespace>` (`stream`, `seq`, `data`, primary key `(stream, seq)`) and
//! `log_<namespace>_heads` (`stream` primary key, `seq` of its last entry). The pool is the
//! key–value backend's: WAL with `synchronous = FULL`, a busy timeout of the operation timeout.
//!
//! Capabilities:
//! - [x] append (one transaction, consecutive numbers), read after, read last
//! - [x] retention: exact; entries older than the last `retain` are deleted by the append that
//!   pushes them out
//! - [x] atomic numbering across processes sharing the file: SQLite has one writer at a time,
//!   and the append's first statement takes the write lock
//! - [x] durability: an acknowledged append survives `kill -9` and power loss
//! - [x] schema creation (`migrate`)
//! - [ ] sharing between hosts: one file on one machine

use sqlx::sqlite::SqlitePool;

use super::sql::Statements;
use crate::storage::sql::sqlite::{WriteQueue, connect_pool, map_sqlx_error};
use crate::storage::{ConnectOptions, StorageError, validate_namespace};

/// The streams of one namespace in one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteLog {
    pool: SqlitePool,
    writes: WriteQueue,
    retain: usize,
    sql: Statements,
}

/// This dialect's statements for the tables `entries` and `heads`.
fn statements(entries: &str, heads: &str) -> Statements {
    Statements {
        create_entries: format!(
            "CREATE TABLE IF NOT EXISTS {entries} (stream TEXT NOT NULL, seq INTEGER NOT NULL, \
             data BLOB NOT NULL, PRIMARY KEY (stream, seq)) WITHOUT ROWID"
        ),
        create_heads: format!(
            "CREATE TABLE IF NOT EXISTS {heads} \
             (stream TEXT PRIMARY KEY NOT NULL, seq INTEGER NOT NULL)"
        ),
        drop_entries: format!("DROP TABLE IF EXISTS {entries}"),
        drop_heads: format!("DROP TABLE IF EXISTS {heads}"),
        drop_record: format!(
            "DROP TABLE IF EXISTS {}",
            crate::storage::sql::record_table(entries)
        ),
        advance_head: format!(
            "INSERT INTO {heads} (stream, seq) VALUES (?1, ?2) \
             ON CONFLICT (stream) DO UPDATE SET seq = {heads}.seq + excluded.seq RETURNING seq"
        ),
        head: format!("SELECT seq FROM {heads} WHERE stream = ?1"),
        insert_prefix: format!("INSERT INTO {entries} (stream, seq, data) "),
        trim: format!("DELETE FROM {entries} WHERE stream = ?1 AND seq <= ?2"),
        read_after: format!(
            "SELECT seq, data FROM {entries} WHERE stream = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
        ),
        read_last: format!(
            "SELECT seq, data FROM {entries} WHERE stream = ?1 ORDER BY seq DESC LIMIT ?2"
        ),
    }
}

impl SqliteLog {
    /// Waits for this process's turn to write to the file (see [`WriteQueue`]).
    async fn write_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.writes.turn().await
    }

    /// Opens (creating when missing) the database named by `url` and, when `migrate` is true,
    /// the tables of `namespace`; each stream keeps its last `retain` entries (at least 1).
    pub async fn connect(
        url: &str,
        namespace: &str,
        retain: usize,
        migrate: bool,
        options: &ConnectOptions,
    ) -> Result<SqliteLog, StorageError> {
        validate_namespace(namespace)?;
        let pool = connect_pool(url, options).await?;
        let log = SqliteLog {
            pool,
            writes: WriteQueue::of(url),
            retain: retain.max(1),
            sql: statements(
                &format!("log_{namespace}"),
                &format!("log_{namespace}_heads"),
            ),
        };
        if migrate {
            let pool = crate::storage::pool::SqlPool::Sqlite(log.pool.clone());
            let entries = format!("log_{namespace}");
            let creates = [log.sql.create_entries.as_str(), &log.sql.create_heads];
            crate::storage::sql::create_tables(pool, &entries, &creates)
                .await
                .map_err(map_sqlx_error)?;
        }
        Ok(log)
    }

    /// Closes every pooled connection, so the file can be removed.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

super::sql::impl_log_over_sqlx!(SqliteLog, "sqlite");
