//! What the SQL backends share: the statement set of one namespace and, for the backends whose
//! keys bind as text (PostgreSQL, SQLite), the whole [`KeyValue`](super::KeyValue) implementation.
//!
//! The SQL text itself stays in each backend's file: placeholders (`$1` against `?`), upserts and
//! column types differ per dialect, and sqlx's `Any` driver does not rewrite them.

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

/// Implements `KeyValue` for `$store`, a struct with `pool: sqlx::Pool<_>` and
/// `sql: Statements`, whose keys bind as text and values as bytes, and an `async fn
/// write_turn(&self)` every write holds the result of while it runs (SQLite's queue of writers;
/// nothing for PostgreSQL). Errors go through the invoking module's `map_sqlx_error`, so each
/// backend keeps its own error mapping.
macro_rules! impl_key_value_over_sqlx {
    ($store:ty, $backend:literal) => {
        #[async_trait::async_trait]
        impl $crate::storage::KeyValue for $store {
            async fn get(
                &self,
                key: &str,
            ) -> Result<Option<Vec<u8>>, $crate::storage::StorageError> {
                let row = sqlx::query(&self.sql.get)
                    .bind(key)
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
                let _turn = self.write_turn().await;
                sqlx::query(&self.sql.put)
                    .bind(key)
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
                let _turn = self.write_turn().await;
                let done = sqlx::query(&self.sql.put_if_absent)
                    .bind(key)
                    .bind(value)
                    .execute(&self.pool)
                    .await
                    .map_err(map_sqlx_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete(&self, key: &str) -> Result<bool, $crate::storage::StorageError> {
                let _turn = self.write_turn().await;
                let done = sqlx::query(&self.sql.delete)
                    .bind(key)
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
                let fetch = $crate::storage::sql::fetch_limit(limit);
                let query = match after {
                    Some(after) => sqlx::query(&self.sql.scan_after).bind(after).bind(fetch),
                    None => sqlx::query(&self.sql.scan_first).bind(fetch),
                };
                let rows = query.fetch_all(&self.pool).await.map_err(map_sqlx_error)?;
                let entries = rows
                    .iter()
                    .map(|row| {
                        Ok((
                            sqlx::Row::try_get::<String, _>(row, 0)?,
                            sqlx::Row::try_get::<Vec<u8>, _>(row, 1)?,
                        ))
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                    .map_err(map_sqlx_error)?;
                Ok($crate::storage::ScanPage::from_rows(entries, limit))
            }

            async fn write_batch(
                &self,
                writes: &[$crate::storage::BatchWrite],
            ) -> Result<$crate::storage::BatchOutcome, $crate::storage::StorageError> {
                use $crate::storage::{BatchOutcome, BatchWrite};
                let _turn = self.write_turn().await;
                let mut transaction = self.pool.begin().await.map_err(map_sqlx_error)?;
                for write in writes {
                    let query = match write {
                        BatchWrite::Put { key, value } => sqlx::query(&self.sql.put)
                            .bind(key.as_str())
                            .bind(value.as_slice()),
                        BatchWrite::Insert { key, value } => sqlx::query(&self.sql.put_if_absent)
                            .bind(key.as_str())
                            .bind(value.as_slice()),
                        BatchWrite::Delete { key } => {
                            sqlx::query(&self.sql.delete).bind(key.as_str())
                        }
                    };
                    let done = query
                        .execute(&mut *transaction)
                        .await
                        .map_err(map_sqlx_error)?;
                    if matches!(write, BatchWrite::Insert { .. }) && done.rows_affected() == 0 {
                        // Dropping the transaction rolls it back.
                        return Ok(BatchOutcome::Conflict {
                            key: write.key().to_owned(),
                        });
                    }
                }
                transaction.commit().await.map_err(map_sqlx_error)?;
                Ok(BatchOutcome::Applied)
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
