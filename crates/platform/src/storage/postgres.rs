//! `postgres:` — a key–value store in a PostgreSQL table, for several instances sharing data.
//!
//! URL: `postgres://user:password@host:5432/database` (`postgresql://` too; sqlx's query
//! parameters such as `sslmode` apply).
//!
//! Capabilities:
//! - [x] get, put, put-if-absent, delete
//! - [x] ordered scan with a cursor: keys are `TEXT COLLATE "C"`, which compares bytes
//! - [x] atomic put-if-absent (`INSERT … ON CONFLICT DO NOTHING`)
//! - [x] atomic batches (one transaction)
//! - [x] durability: whatever the server's `synchronous_commit` promises
//! - [x] schema creation (`migrate`): table `kv_<namespace>`, safe to run from many instances
//! - [x] fails fast while the server is down and reconnects by itself when it returns
//! - [ ] keys containing NUL: PostgreSQL `TEXT` rejects them (a backend error)

use std::str::FromStr;

use sqlx::error::DatabaseError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::sql::Statements;
use super::{ConnectOptions, StorageError, validate_namespace};

/// A key–value namespace stored as the table `kv_<namespace>` of one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresKeyValue {
    pool: PgPool,
    table: String,
    sql: Statements,
}

/// This dialect's statements for the table `table`.
fn statements(table: &str) -> Statements {
    Statements {
        create: format!(
            "CREATE TABLE IF NOT EXISTS {table} \
             (key TEXT COLLATE \"C\" PRIMARY KEY, value BYTEA NOT NULL)"
        ),
        drop: format!("DROP TABLE IF EXISTS {table}"),
        get: format!("SELECT value FROM {table} WHERE key = $1"),
        put: format!(
            "INSERT INTO {table} (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        ),
        put_if_absent: format!(
            "INSERT INTO {table} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING"
        ),
        delete: format!("DELETE FROM {table} WHERE key = $1"),
        scan_first: format!("SELECT key, value FROM {table} ORDER BY key LIMIT $1"),
        scan_after: format!("SELECT key, value FROM {table} WHERE key > $1 ORDER BY key LIMIT $2"),
    }
}

impl PostgresKeyValue {
    /// PostgreSQL queues writers itself (row locks); nothing to wait for here.
    async fn write_turn(&self) {}

    /// Connects a pool to the database named by `url` and, when `migrate` is true, creates the
    /// table of `namespace`. Fails within about `connect_timeout` when the server is down.
    pub async fn connect(
        url: &str,
        namespace: &str,
        migrate: bool,
        options: &ConnectOptions,
    ) -> Result<PostgresKeyValue, StorageError> {
        validate_namespace(namespace)?;
        let pool = connect_pool(url, options).await?;

        let table = format!("kv_{namespace}");
        let store = PostgresKeyValue {
            pool,
            sql: statements(&table),
            table,
        };
        if migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Creates the table under an advisory lock: concurrent `CREATE TABLE IF NOT EXISTS` of one
    /// name can otherwise fail with a unique violation on `pg_type`.
    async fn migrate(&self) -> Result<(), StorageError> {
        let mut transaction = self.pool.begin().await.map_err(map_sqlx_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('platform.kv'), hashtext($1))")
            .bind(&self.table)
            .execute(&mut *transaction)
            .await
            .map_err(map_sqlx_error)?;
        sqlx::query(&self.sql.create)
            .execute(&mut *transaction)
            .await
            .map_err(map_sqlx_error)?;
        transaction.commit().await.map_err(map_sqlx_error)
    }

    /// Drops the namespace's table and everything in it: for test clean-up and decommissioning.
    pub async fn drop_namespace(&self) -> Result<(), StorageError> {
        sqlx::query(&self.sql.drop)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx_error)?;
        Ok(())
    }
}

/// The pool every PostgreSQL store of `url` uses; shared with the log backend.
pub(crate) async fn connect_pool(
    url: &str,
    options: &ConnectOptions,
) -> Result<PgPool, StorageError> {
    // The parser's message never repeats the URL, so the password cannot leak through it.
    let connect_options = PgConnectOptions::from_str(url)
        .map_err(|error| StorageError::InvalidUrl(format!("postgres url: {error}")))?;
    // The acquire timeout also bounds opening a connection, so a dead or unroutable server
    // gives `PoolTimedOut` instead of a hang; the pool opens fresh connections once the
    // server is back, and pinging before lending one out drops those the server closed.
    PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.connect_timeout)
        .test_before_acquire(true)
        .connect_with(connect_options)
        .await
        .map_err(map_sqlx_error)
}

/// The one place PostgreSQL errors become [`StorageError`] kinds.
pub(crate) fn map_sqlx_error(error: sqlx::Error) -> StorageError {
    super::sql::map_sqlx_error(error, is_temporary)
}

/// SQLSTATE classes that describe the server's state, not the statement: connection exceptions
/// (08), insufficient resources (53), shutdown or start-up (57P01–57P03), and transactions the
/// server chose to abort (40001, 40P01).
fn is_temporary(database: &dyn DatabaseError) -> bool {
    database.code().is_some_and(|code| {
        code.starts_with("08")
            || code.starts_with("53")
            || matches!(&*code, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
    })
}

super::sql::impl_key_value_over_sqlx!(PostgresKeyValue, "postgres");
