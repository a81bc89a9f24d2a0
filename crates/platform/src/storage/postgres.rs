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

use async_trait::async_trait;
use sqlx::postgres::PgPool;

use super::sql::Statements;
use super::sql::postgres::{connect_pool, map_sqlx_error};
use super::{
    BatchOutcome, BatchWrite, ConnectOptions, KeyValue, ScanPage, StorageError, validate_namespace,
};

/// A key–value namespace stored as the table `kv_<namespace>` of one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresKeyValue {
    pool: PgPool,
    table: String,
    sql: Statements,
}

/// This dialect's statements for the table `table`.
fn statements(table: &str) -> Statements {
    Statements {
        create: format!(
            "CREATE TABLE IF NOT EXISTS {table} \
             (key TEXT COLLATE \"C\" PRIMARY KEY, value BYTEA NOT NULL)"
        ),
        drop: format!(
            "DROP TABLE IF EXISTS {table}, {}",
            super::sql::record_table(table)
        ),
        get: format!("SELECT value FROM {table} WHERE key = $1"),
        put: format!(
            "INSERT INTO {table} (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        ),
        put_if_absent: format!(
            "INSERT INTO {table} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING"
        ),
        delete: format!("DELETE FROM {table} WHERE key = $1"),
        scan_first: format!("SELECT key, value FROM {table} ORDER BY key LIMIT $1"),
        scan_after: format!("SELECT key, value FROM {table} WHERE key > $1 ORDER BY key LIMIT $2"),
    }
}

impl PostgresKeyValue {
    /// Connects a pool to the database named by `url` and, when `migrate` is true, creates the
    /// table of `namespace`. Fails within about `connect_timeout` when the server is down.
    pub async fn connect(
        url: &str,
        namespace: &str,
        migrate: bool,
        options: &ConnectOptions,
    ) -> Result<PostgresKeyValue, StorageError> {
        validate_namespace(namespace)?;
        let pool = connect_pool(url, options).await?;

        let table = format!("kv_{namespace}");
        let store = PostgresKeyValue {
            pool,
            sql: statements(&table),
            table,
        };
        if migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Creates the table through the SQL layer's migration runner (under its advisory lock:
    /// concurrent `CREATE TABLE IF NOT EXISTS` of one name can otherwise fail with a unique
    /// violation on `pg_type`).
    async fn migrate(&self) -> Result<(), StorageError> {
        let pool = super::pool::SqlPool::Postgres(self.pool.clone());
        super::sql::create_tables(pool, &self.table, &[&self.sql.create])
            .await
            .map_err(map_sqlx_error)
    }

    /// Drops the namespace's table and everything in it: for test clean-up and decommissioning.
    pub async fn drop_namespace(&self) -> Result<(), StorageError> {
        sqlx::query(&self.sql.drop)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx_error)?;
        Ok(())
    }
}

#[async_trait]
impl KeyValue for PostgresKeyValue {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let row = sqlx::query(&self.sql.get)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_sqlx_error)?;
        row.map(|row| sqlx::Row::try_get::<Vec<u8>, _>(&row, 0))
            .transpose()
            .map_err(map_sqlx_error)
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        sqlx::query(&self.sql.put)
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx_error)?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool, StorageError> {
        let done = sqlx::query(&self.sql.put_if_absent)
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        let done = sqlx::query(&self.sql.delete)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(map_sqlx_error)?;
        Ok(done.rows_affected() == 1)
    }

    /// `limit` is clamped to at least 1, as in every backend.
    async fn scan(&self, after: Option<&str>, limit: usize) -> Result<ScanPage, StorageError> {
        let limit = limit.max(1);
        let fetch = super::sql::fetch_limit(limit);
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
        Ok(ScanPage::from_rows(entries, limit))
    }

    async fn write_batch(&self, writes: &[BatchWrite]) -> Result<BatchOutcome, StorageError> {
        let mut transaction = self.pool.begin().await.map_err(map_sqlx_error)?;
        for write in writes {
            let query = match write {
                BatchWrite::Put { key, value } => sqlx::query(&self.sql.put)
                    .bind(key.as_str())
                    .bind(value.as_slice()),
                BatchWrite::Insert { key, value } => sqlx::query(&self.sql.put_if_absent)
                    .bind(key.as_str())
                    .bind(value.as_slice()),
                BatchWrite::Delete { key } => sqlx::query(&self.sql.delete).bind(key.as_str()),
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

    async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_sqlx_error)?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}
