//! The SQL layer: one module per dialect that owns connecting and its error mapping
//! ([`sqlite`], [`postgres`], [`mysql`]), and the one migration runner ([`migrate`]). Every SQL
//! store opens its pool here: the key–value stores of PostgreSQL and MySQL, the PostgreSQL log,
//! and [`SqlDatabase`](super::pool::SqlDatabase). Every store on SQLite (key–value, log, and
//! `SqlDatabase`'s statements and migrations) runs on a [`SqliteFile`](super::sqlite::SqliteFile)
//! instead: rusqlite, reads on the calling thread, writes in the file's group commit.
//!
//! The SQL text itself stays in each store's file: placeholders (`$1` against `?`), upserts and
//! column types differ per dialect, and sqlx's `Any` driver does not rewrite them. Where two
//! dialects differ in nothing else, a [`Dialect`] says how (the log's statements).

pub(crate) mod migrate;
pub(crate) mod mysql;
pub(crate) mod postgres;
pub(crate) mod sqlite;

/// Connects the pool of a database server, whatever its dialect: at most `max_connections`, and
/// an acquire timeout of `connect_timeout`, which also bounds opening a connection, so a dead or
/// unroutable server gives `PoolTimedOut` instead of a hang. The pool opens fresh connections
/// once the server is back, and pinging before lending one out drops those the server closed.
/// Errors go through `map_error`, the dialect's mapping.
pub(crate) async fn connect_server_pool<DB: sqlx::Database>(
    connect_options: <DB::Connection as sqlx::Connection>::Options,
    options: &super::ConnectOptions,
    map_error: fn(sqlx::Error) -> super::StorageError,
) -> Result<sqlx::Pool<DB>, super::StorageError> {
    sqlx::pool::PoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.connect_timeout)
        .test_before_acquire(true)
        .connect_with(connect_options)
        .await
        .map_err(map_error)
}

/// What statements written once for SQLite and PostgreSQL differ in. Both spell an upsert
/// `INSERT … ON CONFLICT … DO UPDATE` (with `excluded`) and return rows with `RETURNING`; they
/// number parameters and name column types differently.
#[derive(Debug)]
pub(crate) struct Dialect {
    /// Before a parameter's number: `?` (`?1`) or `$` (`$1`).
    parameter_sigil: char,
    /// Text that sorts and compares byte by byte (SQLite's default `BINARY` collation;
    /// PostgreSQL's `"C"`).
    pub(crate) text: &'static str,
    /// A 64-bit integer.
    pub(crate) integer: &'static str,
    /// Bytes.
    pub(crate) bytes: &'static str,
    /// After a table that is only ever read by its primary key: SQLite's `WITHOUT ROWID`
    /// keeps the rows in the key's own b-tree. PostgreSQL has no such option.
    pub(crate) clustered: &'static str,
}

impl Dialect {
    /// SQLite, as rusqlite runs it.
    pub(crate) const SQLITE: Dialect = Dialect {
        parameter_sigil: '?',
        text: "TEXT",
        integer: "INTEGER",
        bytes: "BLOB",
        clustered: " WITHOUT ROWID",
    };

    /// PostgreSQL.
    pub(crate) const POSTGRES: Dialect = Dialect {
        parameter_sigil: '$',
        text: "TEXT COLLATE \"C\"",
        integer: "BIGINT",
        bytes: "BYTEA",
        clustered: "",
    };

    /// The `n`th parameter (from 1).
    pub(crate) fn parameter(&self, n: usize) -> String {
        format!("{}{n}", self.parameter_sigil)
    }
}

/// The key–value statements of one namespace, formatted once because the table name is part of
/// them.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    /// `kv_<namespace>`.
    pub(crate) table: String,
    pub(crate) create: String,
    /// Drop the table, then the migration runner's record of it: one statement each, since
    /// SQLite drops one table per statement.
    pub(crate) drop: [String; 2],
    pub(crate) get: String,
    pub(crate) put: String,
    pub(crate) put_if_absent: String,
    pub(crate) delete: String,
    pub(crate) scan_first: String,
    pub(crate) scan_after: String,
}

impl Statements {
    /// The statements of `table` in a dialect that spells an upsert `INSERT … ON CONFLICT`
    /// (SQLite and PostgreSQL; MySQL writes its own).
    pub(crate) fn on_conflict(table: &str, dialect: &Dialect) -> Statements {
        let Dialect { text, bytes, .. } = dialect;
        let [p1, p2] = [1, 2].map(|n| dialect.parameter(n));
        Statements {
            table: table.to_owned(),
            create: format!(
                "CREATE TABLE IF NOT EXISTS {table} \
                 (key {text} PRIMARY KEY NOT NULL, value {bytes} NOT NULL)"
            ),
            drop: Statements::drops(table),
            get: format!("SELECT value FROM {table} WHERE key = {p1}"),
            put: format!(
                "INSERT INTO {table} (key, value) VALUES ({p1}, {p2}) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            put_if_absent: format!(
                "INSERT INTO {table} (key, value) VALUES ({p1}, {p2}) ON CONFLICT (key) DO NOTHING"
            ),
            delete: format!("DELETE FROM {table} WHERE key = {p1}"),
            scan_first: format!("SELECT key, value FROM {table} ORDER BY key LIMIT {p1}"),
            scan_after: format!(
                "SELECT key, value FROM {table} WHERE key > {p1} ORDER BY key LIMIT {p2}"
            ),
        }
    }

    /// [`Statements::drop`] of `table`, in every dialect.
    pub(crate) fn drops(table: &str) -> [String; 2] {
        [table.to_owned(), record_table(table)].map(|table| format!("DROP TABLE IF EXISTS {table}"))
    }
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

/// A cheap round trip on `executor` (a pool) that proves the server answers; feeds `/readyz`.
/// Errors go through `map_error`, the dialect's mapping.
pub(crate) async fn ping<'c>(
    executor: impl sqlx::Executor<'c>,
    map_error: fn(sqlx::Error) -> super::StorageError,
) -> Result<(), super::StorageError> {
    executor
        .execute("SELECT 1")
        .await
        .map(drop)
        .map_err(map_error)
}

/// `LIMIT` for a page of `limit` entries plus the one that tells whether another page follows.
pub(crate) fn fetch_limit(limit: usize) -> i64 {
    i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
}

/// Creates a store's own tables (`statements`) through the migration runner, as one step
/// recorded in `<table>_migrations`, so stores migrate the way services do and concurrent
/// starts are serialised by the runner's lock.
pub(crate) async fn create_tables(
    connections: super::pool::SqlConnections<'_>,
    table: &str,
    statements: &[&str],
) -> Result<(), super::StorageError> {
    let step = migrate::Step {
        name: "0001_create",
        statements,
    };
    migrate::run(connections, &record_table(table), &[step]).await
}

/// Where [`create_tables`] records what it applied for `table`; dropped with the store.
pub(crate) fn record_table(table: &str) -> String {
    format!("{table}_migrations")
}

/// Defines the struct `$store` (documented by `$attribute`s) over a `$pool` and implements
/// `connect`, `drop_namespace` and `KeyValue` for it, written once for PostgreSQL and MySQL
/// (`$variant` names the dialect in [`SqlConnections`](super::pool::SqlConnections)). The
/// invoking module connects (`connect_pool(url, options)`), writes its statements
/// (`statements(&table)`), and says how its keys are stored: `check_key(&str) -> Result<(),
/// StorageError>` (refuses what the column cannot hold), `bind_key(&str)` (text or bytes),
/// `key_from_row(&Row) -> Result<String, StorageError>` and `sql_limit(usize)` (its `LIMIT`
/// type); errors go through its `map_sqlx_error`.
macro_rules! impl_key_value_over_sqlx {
    ($(#[$attribute:meta])* $store:ident($pool:ty), $backend:literal, $variant:ident) => {
        $(#[$attribute])*
        #[derive(Debug, Clone)]
        pub struct $store {
            pool: $pool,
            sql: $crate::storage::sql::Statements,
        }

        impl $store {
            /// Connects a pool to the database named by `url` and, when `migrate` is true,
            /// creates the table of `namespace`. Fails within about `connect_timeout` when the
            /// server is down.
            pub async fn connect(
                url: &str,
                namespace: &str,
                migrate: bool,
                options: &$crate::storage::ConnectOptions,
            ) -> Result<$store, $crate::storage::StorageError> {
                $crate::storage::validate_namespace(namespace)?;
                let pool = connect_pool(url, options).await?;
                let store = $store {
                    pool,
                    sql: statements(&format!("kv_{namespace}")),
                };
                if migrate {
                    let connections = $crate::storage::pool::SqlConnections::$variant(&store.pool);
                    let creates = [store.sql.create.as_str()];
                    $crate::storage::sql::create_tables(connections, &store.sql.table, &creates)
                        .await?;
                }
                Ok(store)
            }

            /// Drops the namespace's table and everything in it: for test clean-up and
            /// decommissioning.
            pub async fn drop_namespace(&self) -> Result<(), $crate::storage::StorageError> {
                for drop in &self.sql.drop {
                    sqlx::query(drop)
                        .execute(&self.pool)
                        .await
                        .map_err(map_sqlx_error)?;
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::storage::KeyValue for $store {
            async fn get(
                &self,
                key: &str,
            ) -> Result<Option<Vec<u8>>, $crate::storage::StorageError> {
                check_key(key)?;
                let row = sqlx::query(&self.sql.get)
                    .bind(bind_key(key))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_sqlx_error)?;
                row.map(|row| sqlx::Row::try_get::<Vec<u8>, _>(&row, 0))
                    .transpose()
                    .map_err(map_sqlx_error)
            }

            async fn put(
                &self,
                key: &str,
                value: &[u8],
            ) -> Result<(), $crate::storage::StorageError> {
                check_key(key)?;
                sqlx::query(&self.sql.put)
                    .bind(bind_key(key))
                    .bind(value)
                    .execute(&self.pool)
                    .await
                    .map_err(map_sqlx_error)?;
                Ok(())
            }

            async fn put_if_absent(
                &self,
                key: &str,
                value: &[u8],
            ) -> Result<bool, $crate::storage::StorageError> {
                check_key(key)?;
                let done = sqlx::query(&self.sql.put_if_absent)
                    .bind(bind_key(key))
                    .bind(value)
                    .execute(&self.pool)
                    .await
                    .map_err(map_sqlx_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete(&self, key: &str) -> Result<bool, $crate::storage::StorageError> {
                check_key(key)?;
                let done = sqlx::query(&self.sql.delete)
                    .bind(bind_key(key))
                    .execute(&self.pool)
                    .await
                    .map_err(map_sqlx_error)?;
                Ok(done.rows_affected() == 1)
            }

            /// `limit` is clamped to at least 1, as in every backend.
            async fn scan(
                &self,
                after: Option<&str>,
                limit: usize,
            ) -> Result<$crate::storage::ScanPage, $crate::storage::StorageError> {
                let limit = limit.max(1);
                // One row past the page tells whether another page follows.
                let fetch = sql_limit(limit.saturating_add(1));
                let query = match after {
                    Some(after) => sqlx::query(&self.sql.scan_after)
                        .bind(bind_key(after))
                        .bind(fetch),
                    None => sqlx::query(&self.sql.scan_first).bind(fetch),
                };
                let rows = query.fetch_all(&self.pool).await.map_err(map_sqlx_error)?;
                let mut entries = Vec::with_capacity(rows.len());
                for row in &rows {
                    let value = sqlx::Row::try_get::<Vec<u8>, _>(row, 1).map_err(map_sqlx_error)?;
                    entries.push((key_from_row(row)?, value));
                }
                Ok($crate::storage::ScanPage::from_rows(entries, limit))
            }

            async fn write_batch(
                &self,
                writes: &[$crate::storage::BatchWrite],
            ) -> Result<$crate::storage::BatchOutcome, $crate::storage::StorageError> {
                for write in writes {
                    check_key(write.key())?;
                }
                let mut transaction = self.pool.begin().await.map_err(map_sqlx_error)?;
                for write in writes {
                    let query = match write {
                        $crate::storage::BatchWrite::Put { key, value } => {
                            sqlx::query(&self.sql.put)
                                .bind(bind_key(key))
                                .bind(value.as_slice())
                        }
                        $crate::storage::BatchWrite::Insert { key, value } => {
                            sqlx::query(&self.sql.put_if_absent)
                                .bind(bind_key(key))
                                .bind(value.as_slice())
                        }
                        $crate::storage::BatchWrite::Delete { key } => {
                            sqlx::query(&self.sql.delete).bind(bind_key(key))
                        }
                    };
                    let done = query
                        .execute(&mut *transaction)
                        .await
                        .map_err(map_sqlx_error)?;
                    if matches!(write, $crate::storage::BatchWrite::Insert { .. })
                        && done.rows_affected() == 0
                    {
                        // Dropping the transaction rolls it back.
                        return Ok($crate::storage::BatchOutcome::Conflict {
                            key: write.key().to_owned(),
                        });
                    }
                }
                transaction.commit().await.map_err(map_sqlx_error)?;
                Ok($crate::storage::BatchOutcome::Applied)
            }

            async fn ping(&self) -> Result<(), $crate::storage::StorageError> {
                $crate::storage::sql::ping(&self.pool, map_sqlx_error).await
            }

            fn backend(&self) -> &'static str {
                $backend
            }
        }
    };
}

pub(crate) use impl_key_value_over_sqlx;
