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

/// The pool settings of a database server, whatever its dialect: at most `max_connections`, and
/// an acquire timeout of `connect_timeout`, which also bounds opening a connection, so a dead or
/// unroutable server gives `PoolTimedOut` instead of a hang. The pool opens fresh connections
/// once the server is back, and pinging before lending one out drops those the server closed.
pub(crate) fn server_pool_options<DB: sqlx::Database>(
    options: &super::ConnectOptions,
) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.connect_timeout)
        .test_before_acquire(true)
}

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

/// Implements `connect`, `drop_namespace` and `KeyValue` for `$store`, a struct with
/// `pool: sqlx::Pool<_>`, `sql: Statements` and `table: String`, written once for PostgreSQL and
/// MySQL (`$variant` names the dialect in [`SqlPool`](super::pool::SqlPool)). The invoking
/// module connects (`connect_pool(url, options)`), writes its statements
/// (`statements(&table)`), and says how its keys are stored: `check_key(&str) -> Result<(),
/// StorageError>` (refuses what the column cannot hold), `bind_key(&str)` (text or bytes),
/// `key_from_row(&Row) -> Result<String, StorageError>` and `sql_limit(usize)` (its `LIMIT`
/// type); errors go through its `map_sqlx_error`.
macro_rules! impl_key_value_over_sqlx {
    ($store:ident, $backend:literal, $variant:ident) => {
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
                let table = format!("kv_{namespace}");
                let store = $store {
                    pool,
                    sql: statements(&table),
                    table,
                };
                if migrate {
                    let pool = $crate::storage::pool::SqlPool::$variant(store.pool.clone());
                    $crate::storage::sql::create_tables(pool, &store.table, &[&store.sql.create])
                        .await
                        .map_err(map_sqlx_error)?;
                }
                Ok(store)
            }

            /// Drops the namespace's table and everything in it: for test clean-up and
            /// decommissioning.
            pub async fn drop_namespace(&self) -> Result<(), $crate::storage::StorageError> {
                sqlx::query(&self.sql.drop)
                    .execute(&self.pool)
                    .await
                    .map_err(map_sqlx_error)?;
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
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(map_sqlx_error)?;
                Ok(())
            }

            fn backend(&self) -> &'static str {
                $backend
            }
        }
    };
}

pub(crate) use impl_key_value_over_sqlx;
