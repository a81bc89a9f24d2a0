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

use sqlx::Row;
use sqlx::postgres::{PgPool, PgRow};

use super::StorageError;
use super::sql::postgres::{connect_pool, map_sqlx_error};
use super::sql::{Dialect, Statements};

/// This dialect's statements for the table `table`.
fn statements(table: &str) -> Statements {
    Statements::on_conflict(table, &Dialect::POSTGRES)
}

/// Any key: `TEXT` holds every string but those with NUL, which PostgreSQL refuses itself.
fn check_key(_: &str) -> Result<(), StorageError> {
    Ok(())
}

/// Keys bind as text.
fn bind_key(key: &str) -> &str {
    key
}

fn key_from_row(row: &PgRow) -> Result<String, StorageError> {
    row.try_get::<String, _>(0).map_err(map_sqlx_error)
}

/// PostgreSQL's `LIMIT` takes a signed 64-bit integer.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

super::sql::impl_key_value_over_sqlx!(
    /// A key–value namespace stored as the table `kv_<namespace>` of one PostgreSQL database.
    PostgresKeyValue(PgPool),
    "postgres",
    Postgres
);
