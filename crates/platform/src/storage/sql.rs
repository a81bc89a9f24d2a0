//! The SQL layer: one module per dialect that owns connecting and its error mapping
//! ([`sqlite`], [`postgres`], [`mysql`]), and the one migration runner ([`migrate`]). Every SQL
//! store opens its pool here: the key–value stores of PostgreSQL and MySQL, the logs of SQLite
//! and PostgreSQL, and [`SqlDatabase`](super::pool::SqlDatabase). (The SQLite key–value store
//! uses rusqlite, not sqlx: see [`super::sqlite`].)
//!
//! The SQL text itself stays in each store's file: placeholders (`$1` against `?`), upserts and
//! column types differ per dialect, and sqlx's `Any` driver does not rewrite them.

pub(crate) mod migrate;
pub(crate) mod mysql;
pub(crate) mod postgres;
pub(crate) mod sqlite;

/// The statements of one namespace, formatted once because the table name is part of them.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    pub(crate) create: String,
    pub(crate) drop: String,
    pub(crate) get: String,
    pub(crate) put: String,
    pub(crate) put_if_absent: String,
    pub(crate) delete: String,
    pub(crate) scan_first: String,
    pub(crate) scan_after: String,
}

/// Maps a sqlx error to a [`StorageError`](super::StorageError) kind. Connection-level failures
/// (I/O, TLS, protocol, pool timeout or closed) are temporary in every dialect; a database error
/// is temporary when `temporary_database_error`, the dialect's own list of codes, says so.
pub(crate) fn map_sqlx_error(
    error: sqlx::Error,
    temporary_database_error: fn(&dyn sqlx::error::DatabaseError) -> bool,
) -> super::StorageError {
    let temporary = match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => temporary_database_error(database.as_ref()),
        _ => false,
    };
    if temporary {
        super::StorageError::Unavailable(Box::new(error))
    } else {
        super::StorageError::Backend(Box::new(error))
    }
}

/// `LIMIT` for a page of `limit` entries plus the one that tells whether another page follows.
pub(crate) fn fetch_limit(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

/// Creates a store's own tables (`statements`) through the migration runner, as one step
/// recorded in `<table>_migrations`, so stores migrate the way services do and concurrent
/// starts are serialised by the runner's lock.
pub(crate) async fn create_tables(
    pool: super::pool::SqlPool,
    table: &str,
    statements: &[&str],
) -> Result<(), sqlx::Error> {
    let step = migrate::Step {
        name: "0001_create",
        statements,
    };
    migrate::run(&pool, &record_table(table), &[step]).await
}

/// Where [`create_tables`] records what it applied for `table`; dropped with the store.
pub(crate) fn record_table(table: &str) -> String {
    format!("{table}_migrations")
}
