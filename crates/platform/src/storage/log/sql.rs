//! What the SQL log backends share: the statement set of one namespace and the whole
//! [`Log`](super::Log) implementation over an sqlx pool. The SQL text stays in each backend's
//! file, because placeholders and column types differ per dialect.

/// Rows per multi-row `INSERT`: three parameters each, well below SQLite's oldest limit of 999
/// parameters and PostgreSQL's 65535.
pub(crate) const INSERT_CHUNK: usize = 300;

/// The statements of one namespace, formatted once because the table names are part of them.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    /// Creates the entries table (`stream`, `seq`, `data`, primary key `(stream, seq)`).
    pub(crate) create_entries: String,
    /// Creates the heads table (`stream` primary key, `seq` of its last entry).
    pub(crate) create_heads: String,
    pub(crate) drop_entries: String,
    pub(crate) drop_heads: String,
    /// The migration runner's record of the two tables.
    pub(crate) drop_record: String,
    /// `(stream, n)`: adds `n` to the stream's head, creating it at `n`; returns the new head.
    pub(crate) advance_head: String,
    /// `(stream)`: the stream's head, if it has one.
    pub(crate) head: String,
    /// The `INSERT INTO … (stream, seq, data) ` that a `VALUES` list follows.
    pub(crate) insert_prefix: String,
    /// `(stream, seq)`: deletes the stream's entries numbered `seq` or lower.
    pub(crate) trim: String,
    /// `(stream, after, limit)`: entries above `after`, ascending.
    pub(crate) read_after: String,
    /// `(stream, limit)`: the last entries, descending.
    pub(crate) read_last: String,
}

/// A sequence number as the `BIGINT` it is stored as; numbers never reach `i64::MAX`, so a
/// larger one (only ever a caller's `after`) is clamped, which selects nothing above it.
pub(crate) fn to_column(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A stored sequence number back as `u64`; a negative one can only come from a table that
/// something else wrote.
pub(crate) fn from_column(seq: i64) -> Result<u64, crate::storage::StorageError> {
    u64::try_from(seq).map_err(|_| {
        crate::storage::StorageError::Backend(
            format!("the log table holds the negative sequence number {seq}").into(),
        )
    })
}

/// A row count or limit as a `BIGINT` parameter.
pub(crate) fn to_count(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Implements `Log` and `drop_namespace` for `$store`, a struct with `pool: sqlx::Pool<_>`,
/// `retain: usize`, `sql: Statements` and an `async fn write_turn(&self)` held through each
/// append's transaction (SQLite's queue of writers; nothing for PostgreSQL). Errors go through
/// the invoking module's `map_sqlx_error`, so each backend keeps its own error mapping.
///
/// `append` is one transaction: advancing the head row (the upsert takes its row lock in
/// PostgreSQL and the database's write lock in SQLite) makes appends to one stream take turns,
/// so numbers are consecutive and committed in order, whichever process appends.
macro_rules! impl_log_over_sqlx {
    ($store:ty, $backend:literal) => {
        impl $store {
            /// Drops the namespace's tables and everything in them: for test clean-up and
            /// decommissioning.
            pub async fn drop_namespace(&self) -> Result<(), $crate::storage::StorageError> {
                for drop in [
                    &self.sql.drop_entries,
                    &self.sql.drop_heads,
                    &self.sql.drop_record,
                ] {
                    sqlx::query(drop)
                        .execute(&self.pool)
                        .await
                        .map_err(map_sqlx_error)?;
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::storage::log::Log for $store {
            async fn append(
                &self,
                stream: &str,
                entries: &[Vec<u8>],
            ) -> Result<u64, $crate::storage::StorageError> {
                use $crate::storage::log::sql::{INSERT_CHUNK, from_column, to_count};
                $crate::storage::log::validate_stream(stream)?;
                if entries.is_empty() {
                    let head: Option<i64> = sqlx::query_scalar(&self.sql.head)
                        .bind(stream)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(map_sqlx_error)?;
                    return Ok(from_column(head.unwrap_or(0))? + 1);
                }
                let count = to_count(entries.len());
                let _turn = self.write_turn().await;
                let mut transaction = self.pool.begin().await.map_err(map_sqlx_error)?;
                let last: i64 = sqlx::query_scalar(&self.sql.advance_head)
                    .bind(stream)
                    .bind(count)
                    .fetch_one(&mut *transaction)
                    .await
                    .map_err(map_sqlx_error)?;
                let first = last - count + 1;
                // Entries that retention would drop at once are numbered but never written.
                let skipped = entries.len().saturating_sub(self.retain);
                let mut seq = first + to_count(skipped);
                for chunk in entries[skipped..].chunks(INSERT_CHUNK) {
                    let mut insert = sqlx::QueryBuilder::new(&self.sql.insert_prefix);
                    insert.push_values(chunk, |mut row, data| {
                        row.push_bind(stream)
                            .push_bind(seq)
                            .push_bind(data.as_slice());
                        seq += 1;
                    });
                    insert
                        .build()
                        .persistent(false)
                        .execute(&mut *transaction)
                        .await
                        .map_err(map_sqlx_error)?;
                }
                let oldest_kept = last - to_count(self.retain) + 1;
                if oldest_kept > 1 {
                    sqlx::query(&self.sql.trim)
                        .bind(stream)
                        .bind(oldest_kept - 1)
                        .execute(&mut *transaction)
                        .await
                        .map_err(map_sqlx_error)?;
                }
                transaction.commit().await.map_err(map_sqlx_error)?;
                from_column(first)
            }

            async fn read_after(
                &self,
                stream: &str,
                after: u64,
                limit: usize,
            ) -> Result<Vec<$crate::storage::log::LogEntry>, $crate::storage::StorageError> {
                use $crate::storage::log::sql::{to_column, to_count};
                $crate::storage::log::validate_stream(stream)?;
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(&self.sql.read_after)
                    .bind(stream)
                    .bind(to_column(after))
                    .bind(to_count(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_sqlx_error)?;
                $crate::storage::log::sql::entries(rows)
            }

            async fn read_last(
                &self,
                stream: &str,
                limit: usize,
            ) -> Result<Vec<$crate::storage::log::LogEntry>, $crate::storage::StorageError> {
                $crate::storage::log::validate_stream(stream)?;
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let mut rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(&self.sql.read_last)
                    .bind(stream)
                    .bind($crate::storage::log::sql::to_count(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_sqlx_error)?;
                rows.reverse();
                $crate::storage::log::sql::entries(rows)
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

pub(crate) use impl_log_over_sqlx;

/// Rows of `(seq, data)` as entries.
pub(crate) fn entries(
    rows: Vec<(i64, Vec<u8>)>,
) -> Result<Vec<super::LogEntry>, crate::storage::StorageError> {
    rows.into_iter()
        .map(|(seq, data)| {
            Ok(super::LogEntry {
                seq: from_column(seq)?,
                data,
            })
        })
        .collect()
}
