//! PostgreSQL through sqlx: connecting and the error mapping, for every store on it.

use std::str::FromStr;

use sqlx::error::DatabaseError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::storage::{ConnectOptions, StorageError};

/// The pool of `url` for every PostgreSQL store: the key–value store, the log and
/// [`SqlDatabase`](crate::storage::pool::SqlDatabase).
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
    super::map_sqlx_error(error, is_temporary)
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
