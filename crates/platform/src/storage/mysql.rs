//! `mysql:` — a key–value store in a MySQL or MariaDB table, for several instances sharing data.
//!
//! URL: `mysql://user:password@host:3306/database`; `mariadb://` is accepted as a synonym.
//!
//! Capabilities:
//! - [x] get, put, put-if-absent, delete
//! - [x] ordered scan with a cursor: keys are `VARBINARY`, compared byte by byte (so keys are
//!   also case-sensitive, unlike MySQL's default collations)
//! - [x] atomic put-if-absent (`INSERT IGNORE` on the primary key)
//! - [x] atomic batches (one InnoDB transaction)
//! - [x] durability: whatever the server's `innodb_flush_log_at_trx_commit` promises
//! - [x] schema creation (`migrate`): table `kv_<namespace>`
//! - [x] fails fast while the server is down and reconnects by itself when it returns
//! - [ ] keys longer than 512 bytes: InnoDB index limits, so such a key is a backend error
//!   (never truncated)
//! - [ ] values larger than the server's `max_allowed_packet` (16 MiB by default in MariaDB)

use sqlx::Row;
use sqlx::mysql::{MySqlPool, MySqlRow};

use super::StorageError;
use super::sql::Statements;
use super::sql::mysql::{connect_pool, map_sqlx_error};

/// Longest key in bytes: the width of the `VARBINARY` primary key.
pub const MAX_KEY_BYTES: usize = 512;

/// This dialect's statements for the table `table`.
fn statements(table: &str) -> Statements {
    Statements {
        table: table.to_owned(),
        create: format!(
            "CREATE TABLE IF NOT EXISTS {table} \
             (k VARBINARY({MAX_KEY_BYTES}) NOT NULL PRIMARY KEY, v LONGBLOB NOT NULL) \
             ENGINE = InnoDB"
        ),
        drop: Statements::drops(table),
        get: format!("SELECT v FROM {table} WHERE k = ?"),
        // `VALUES(v)` is deprecated in MySQL 8.0.20 but is the one spelling MariaDB and
        // MySQL both accept; MariaDB has no `AS new` row alias.
        put: format!(
            "INSERT INTO {table} (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)"
        ),
        // IGNORE would also turn a too-long key into a truncation warning; keys are checked
        // against MAX_KEY_BYTES before any statement runs, so only the duplicate is ignored.
        put_if_absent: format!("INSERT IGNORE INTO {table} (k, v) VALUES (?, ?)"),
        delete: format!("DELETE FROM {table} WHERE k = ?"),
        scan_first: format!("SELECT k, v FROM {table} ORDER BY k LIMIT ?"),
        scan_after: format!("SELECT k, v FROM {table} WHERE k > ? ORDER BY k LIMIT ?"),
    }
}

/// Rejects keys the `VARBINARY` column cannot hold, rather than letting MySQL truncate them.
fn check_key(key: &str) -> Result<(), StorageError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StorageError::Backend(
            format!(
                "key is {} bytes; the mysql backend stores keys of at most {MAX_KEY_BYTES} bytes",
                key.len()
            )
            .into(),
        ));
    }
    Ok(())
}

/// MySQL's `LIMIT` takes an unsigned 64-bit integer.
fn sql_limit(limit: usize) -> u64 {
    u64::try_from(limit).unwrap_or(u64::MAX)
}

/// Keys bind as the bytes of their UTF-8.
fn bind_key(key: &str) -> &[u8] {
    key.as_bytes()
}

/// Keys come back as bytes from the binary column; they were written from `&str`.
fn key_from_row(row: &MySqlRow) -> Result<String, StorageError> {
    let bytes = row.try_get::<Vec<u8>, _>(0).map_err(map_sqlx_error)?;
    String::from_utf8(bytes).map_err(|error| StorageError::Backend(Box::new(error)))
}

super::sql::impl_key_value_over_sqlx!(
    /// A key–value namespace stored as the table `kv_<namespace>` of one MySQL/MariaDB database.
    MysqlKeyValue(MySqlPool),
    "mysql",
    Mysql
);
