//! MySQL and MariaDB through sqlx: connecting and the error mapping, for every store on them.

use std::str::FromStr;

use sqlx::error::DatabaseError;
use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlPool};

use crate::storage::{ConnectOptions, StorageError};

/// The pool of `url` (`mysql://…`, or `mariadb://…` as a synonym) for every MySQL store: the
/// key–value store and [`SqlDatabase`](crate::storage::pool::SqlDatabase). Text is `utf8mb4`.
pub(crate) async fn connect_pool(
    url: &str,
    options: &ConnectOptions,
) -> Result<MySqlPool, StorageError> {
    let url = match url.strip_prefix("mariadb:") {
        Some(rest) => format!("mysql:{rest}"),
        None => url.to_owned(),
    };
    // The parser's message never repeats the URL, so the password cannot leak through it.
    let connect_options = MySqlConnectOptions::from_str(&url)
        .map_err(|error| StorageError::InvalidUrl(format!("mysql url: {error}")))?
        .charset("utf8mb4");
    super::connect_server_pool(connect_options, options, map_sqlx_error).await
}

/// The one place MySQL errors become [`StorageError`] kinds.
pub(crate) fn map_sqlx_error(error: sqlx::Error) -> StorageError {
    super::map_sqlx_error(error, is_temporary)
}

/// Error numbers that describe the server's state, not the statement: too many connections,
/// shutdown in progress, lock wait timeout, deadlock, connection killed, server gone away or lost.
fn is_temporary(database: &dyn DatabaseError) -> bool {
    database
        .try_downcast_ref::<MySqlDatabaseError>()
        .is_some_and(|mysql| {
            matches!(
                mysql.number(),
                1040 | 1053 | 1205 | 1213 | 1927 | 2006 | 2013
            )
        })
}
