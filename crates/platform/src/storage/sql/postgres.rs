//! PostgreSQL through sqlx: connecting and the error mapping, for every store on it.

use std::str::FromStr;

use sqlx::error::DatabaseError;
use sqlx::postgres::{PgConnectOptions, PgPool};

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
    super::connect_server_pool(connect_options, options, map_sqlx_error).await
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
