//! `postgres:` — streams in two PostgreSQL tables, for several instances sharing history.
//!
//! Tables: `log_<namespace>` (`stream`, `seq`, `data`, primary key `(stream, seq)`) and
//! `log_<namespace>_heads` (`stream` primary key, `seq` of its last entry). The pool is the
//! key–value backend's: fails fast while the server is down, reconnects when it returns.
//!
//! Capabilities:
//! - [x] append (one transaction, consecutive numbers), read after, read last
//! - [x] retention: exact; entries older than the last `retain` are deleted by the append that
//!   pushes them out
//! - [x] atomic numbering across processes: the upsert of the head row locks it until commit,
//!   so appends to one stream take turns and commit in order; other streams do not wait
//! - [x] durability: whatever the server's `synchronous_commit` promises
//! - [x] schema creation (`migrate`), safe to run from many instances at once
//! - [x] fails fast while the server is down and reconnects by itself when it returns

use sqlx::postgres::PgPool;

use super::sql::Statements;
use crate::storage::sql::postgres::{connect_pool, map_sqlx_error};
use crate::storage::{ConnectOptions, StorageError, validate_namespace};

/// The streams of one namespace in one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresLog {
    pool: PgPool,
    retain: usize,
    entries_table: String,
    sql: Statements,
}

/// This dialect's statements for the tables `entries` and `heads`.
fn statements(entries: &str, heads: &str) -> Statements {
    Statements {
        create_entries: format!(
            "CREATE TABLE IF NOT EXISTS {entries} (stream TEXT COLLATE \"C\" NOT NULL, \
             seq BIGINT NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (stream, seq))"
        ),
        create_heads: format!(
            "CREATE TABLE IF NOT EXISTS {heads} \
             (stream TEXT COLLATE \"C\" PRIMARY KEY, seq BIGINT NOT NULL)"
        ),
        drop_entries: format!("DROP TABLE IF EXISTS {entries}"),
        drop_heads: format!("DROP TABLE IF EXISTS {heads}"),
        drop_record: format!(
            "DROP TABLE IF EXISTS {}",
            crate::storage::sql::record_table(entries)
        ),
        advance_head: format!(
            "INSERT INTO {heads} (stream, seq) VALUES ($1, $2) \
             ON CONFLICT (stream) DO UPDATE SET seq = {heads}.seq + EXCLUDED.seq RETURNING seq"
        ),
        head: format!("SELECT seq FROM {heads} WHERE stream = $1"),
        insert_prefix: format!("INSERT INTO {entries} (stream, seq, data) "),
        trim: format!("DELETE FROM {entries} WHERE stream = $1 AND seq <= $2"),
        read_after: format!(
            "SELECT seq, data FROM {entries} WHERE stream = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ),
        read_last: format!(
            "SELECT seq, data FROM {entries} WHERE stream = $1 ORDER BY seq DESC LIMIT $2"
        ),
    }
}

impl PostgresLog {
    /// PostgreSQL queues writers itself (row locks); nothing to wait for here.
    async fn write_turn(&self) {}

    /// Connects a pool to the database named by `url` and, when `migrate` is true, creates the
    /// tables of `namespace`; each stream keeps its last `retain` entries (at least 1). Fails
    /// within about `connect_timeout` when the server is down.
    pub async fn connect(
        url: &str,
        namespace: &str,
        retain: usize,
        migrate: bool,
        options: &ConnectOptions,
    ) -> Result<PostgresLog, StorageError> {
        validate_namespace(namespace)?;
        let pool = connect_pool(url, options).await?;
        let entries_table = format!("log_{namespace}");
        let log = PostgresLog {
            pool,
            retain: retain.max(1),
            sql: statements(&entries_table, &format!("log_{namespace}_heads")),
            entries_table,
        };
        if migrate {
            log.migrate().await?;
        }
        Ok(log)
    }

    /// Creates the tables through the SQL layer's migration runner (under its advisory lock:
    /// concurrent `CREATE TABLE IF NOT EXISTS` of one name can otherwise fail with a unique
    /// violation on `pg_type`).
    async fn migrate(&self) -> Result<(), StorageError> {
        let pool = crate::storage::pool::SqlPool::Postgres(self.pool.clone());
        let creates = [self.sql.create_entries.as_str(), &self.sql.create_heads];
        crate::storage::sql::create_tables(pool, &self.entries_table, &creates)
            .await
            .map_err(map_sqlx_error)
    }
}

super::sql::impl_log_over_sqlx!(PostgresLog, "postgres");
