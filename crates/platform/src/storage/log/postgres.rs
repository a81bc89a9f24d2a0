//! `postgres:` — streams in two PostgreSQL tables, for several instances sharing history.
//!
//! Tables: `log_<namespace>` (`stream`, `seq`, `data`, primary key `(stream, seq)`) and
//! `log_<namespace>_heads` (`stream` primary key, `seq` of its last entry). The pool is the
//! key–value backend's: fails fast while the server is down, reconnects when it returns.
//!
//! Capabilities:
//! - [x] append (one transaction, consecutive numbers), read after, read last
//! - [x] retention: exact; entries older than the last `retain` are deleted by the append that
//!   pushes them out
//! - [x] atomic numbering across processes: the upsert of the head row locks it until commit,
//!   so appends to one stream take turns and commit in order; other streams do not wait
//! - [x] durability: whatever the server's `synchronous_commit` promises
//! - [x] schema creation (`migrate`), safe to run from many instances at once
//! - [x] fails fast while the server is down and reconnects by itself when it returns

use async_trait::async_trait;
use sqlx::postgres::PgPool;

use super::sql::{Statements, entries, from_column, to_column, to_count};
use super::{Entries, Log, validate_read, validate_stream};
use crate::storage::pool::SqlConnections;
use crate::storage::sql::Dialect;
use crate::storage::sql::postgres::{connect_pool, map_sqlx_error};
use crate::storage::{ConnectOptions, StorageError, validate_namespace};

/// Rows per multi-row `INSERT`: three parameters each, well below PostgreSQL's limit of 65535.
const INSERT_CHUNK: usize = 300;

/// The streams of one namespace in one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresLog {
    pool: PgPool,
    retain: usize,
    sql: Statements,
}

impl PostgresLog {
    /// Connects a pool to the database named by `url` and, when `migrate` is true, creates the
    /// tables of `namespace`; each stream keeps its last `retain` entries (at least 1). Fails
    /// within about `connect_timeout` when the server is down.
    pub async fn connect(
        url: &str,
        namespace: &str,
        retain: usize,
        migrate: bool,
        options: &ConnectOptions,
    ) -> Result<PostgresLog, StorageError> {
        validate_namespace(namespace)?;
        let pool = connect_pool(url, options).await?;
        let log = PostgresLog {
            pool,
            retain: retain.max(1),
            sql: Statements::new(namespace, &Dialect::POSTGRES),
        };
        if migrate {
            log.sql
                .create_tables(SqlConnections::Postgres(&log.pool))
                .await?;
        }
        Ok(log)
    }

    /// Drops the namespace's tables and everything in them: for test clean-up and
    /// decommissioning.
    pub async fn drop_namespace(&self) -> Result<(), StorageError> {
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

#[async_trait]
impl Log for PostgresLog {
    /// One transaction: advancing the head row (the upsert takes its row lock) makes appends
    /// to one stream take turns, so numbers are consecutive and committed in order.
    async fn append(&self, stream: &str, entries: &[Vec<u8>]) -> Result<u64, StorageError> {
        validate_stream(stream)?;
        if entries.is_empty() {
            let head: Option<i64> = sqlx::query_scalar(&self.sql.head)
                .bind(stream)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_sqlx_error)?;
            return Ok(from_column(head.unwrap_or(0))? + 1);
        }
        let count = to_count(entries.len());
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

    async fn read_after(&self, stream: &str, after: u64, limit: usize) -> Entries {
        if !validate_read(stream, limit)? {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(&self.sql.read_after)
            .bind(stream)
            .bind(to_column(after))
            .bind(to_count(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx_error)?;
        entries(rows)
    }

    async fn read_last(&self, stream: &str, limit: usize) -> Entries {
        if !validate_read(stream, limit)? {
            return Ok(Vec::new());
        }
        let mut rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(&self.sql.read_last)
            .bind(stream)
            .bind(to_count(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_sqlx_error)?;
        rows.reverse();
        entries(rows)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        crate::storage::sql::ping(&self.pool, map_sqlx_error).await
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
