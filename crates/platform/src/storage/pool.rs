//! A relational database of the service's own schema, for services whose data does not fit the
//! key–value shape (notes: users, pads, notes, sessions).
//!
//! [`SqlDatabase::open`] opens a pool from `storage.url` (`sqlite:`, `postgres:`, `mysql:`; and
//! `memory:` as an unsynced SQLite file that is removed with the process's last handle on it) with the same limits as the key–value backends,
//! applies the service's migrations for that dialect, and hands back the typed pool in a
//! [`SqlPool`]. The service writes its SQL per dialect (placeholders `?` against `$1`, upserts and
//! `RETURNING` differ), and runs every statement through [`SqlDatabase::observe`], which bounds
//! it by `storage.operation_timeout`, records `storage_operation_duration_seconds` and maps
//! sqlx errors into [`StorageError`] kinds with each dialect's own mapping.
//!
//! The pool comes from the dialect's module of the SQL layer (`storage::sql`), as every SQL
//! store's does, and so does the error mapping. Migrations are named, ordered lists of statements
//! per dialect, applied by the layer's one runner: recorded in the table
//! `<namespace>_migrations`, each runs once, under a lock, so replicas starting together are safe.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::mysql::MySqlPool;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

pub use super::sql::migrate::{Migration, Migrations};
use super::sql::{migrate, mysql, postgres, sqlite};
use super::{ConnectOptions, StorageError, validate_namespace};
use crate::config::StorageSettings;
use crate::metrics::names::STORAGE_OPERATION_DURATION;

/// The typed pool of one dialect. Cloning shares the pool.
#[derive(Debug, Clone)]
pub enum SqlPool {
    /// SQLite (WAL, `synchronous = FULL`), or an unsynced scratch file for `memory:`.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
    /// MySQL or MariaDB.
    Mysql(MySqlPool),
}

/// A pool with the service's schema applied, its timeout and its metrics.
#[derive(Debug, Clone)]
pub struct SqlDatabase {
    pool: SqlPool,
    operation_timeout: Duration,
    /// SQLite's queue of this process's writers to the file; other databases queue their own.
    writes: Option<sqlite::WriteQueue>,
    /// The file behind `memory:`, removed when the last clone of the database is dropped.
    _scratch: Option<Arc<sqlite::ScratchFile>>,
}

impl SqlDatabase {
    /// Opens the database named by `settings.url` and, when `migrate` is true, applies
    /// `migrations` of its dialect, recording them in `<namespace>_migrations`.
    pub async fn open(
        settings: &StorageSettings,
        namespace: &str,
        migrations: &Migrations,
        migrate: bool,
    ) -> Result<SqlDatabase, StorageError> {
        validate_namespace(namespace)?;
        let url = settings.url.expose();
        let scheme = url.split(':').next().unwrap_or_default();
        let options = ConnectOptions::from(settings);
        let scratch = match scheme {
            "memory" => Some(Arc::new(sqlite::ScratchFile::create()?)),
            _ => None,
        };
        let pool = match (scheme, &scratch) {
            (_, Some(scratch)) => {
                SqlPool::Sqlite(sqlite::connect_scratch_pool(scratch, &options).await?)
            }
            ("sqlite", _) => SqlPool::Sqlite(sqlite::connect_pool(url, &options).await?),
            ("postgres" | "postgresql", _) => {
                SqlPool::Postgres(postgres::connect_pool(url, &options).await?)
            }
            ("mysql" | "mariadb", _) => SqlPool::Mysql(mysql::connect_pool(url, &options).await?),
            (other, _) => {
                return Err(StorageError::InvalidUrl(format!(
                    "unknown scheme `{other}:` for a SQL database; expected one of memory:, \
                     sqlite:, postgres:, mysql:"
                )));
            }
        };
        let writes = match (scheme, &scratch) {
            (_, Some(scratch)) => Some(sqlite::WriteQueue::of(&scratch.url())),
            ("sqlite", _) => Some(sqlite::WriteQueue::of(url)),
            _ => None,
        };
        let database = SqlDatabase {
            pool,
            operation_timeout: options.operation_timeout,
            writes,
            _scratch: scratch,
        };
        if migrate {
            database.migrate(namespace, migrations).await?;
        }
        Ok(database)
    }

    /// The typed pool, for the service's per-dialect statements.
    pub fn pool(&self) -> &SqlPool {
        &self.pool
    }

    /// `sqlite`, `postgres` or `mysql`, as in metrics and `/info`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            SqlPool::Sqlite(_) => "sqlite",
            SqlPool::Postgres(_) => "postgres",
            SqlPool::Mysql(_) => "mysql",
        }
    }

    /// Runs one storage operation named `operation` (a fixed name: it becomes a metric label)
    /// under `storage.operation_timeout`, records its duration and outcome, and maps its error.
    pub async fn observe<T>(
        &self,
        operation: &'static str,
        future: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StorageError> {
        let backend = self.backend();
        let started = Instant::now();
        let result = match tokio::time::timeout(self.operation_timeout, future).await {
            Ok(result) => result.map_err(|error| self.map_error(error)),
            Err(_) => Err(StorageError::Unavailable(
                format!(
                    "{backend} {operation} timed out after {:?}",
                    self.operation_timeout
                )
                .into(),
            )),
        };
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::histogram!(
            STORAGE_OPERATION_DURATION,
            "backend" => backend,
            "operation" => operation,
            "outcome" => outcome,
        )
        .record(started.elapsed().as_secs_f64());
        result
    }

    /// [`observe`](Self::observe) for an operation that writes. On SQLite it first waits, within
    /// the same timeout, for this process's turn to write, first come first served: SQLite's own
    /// lock makes waiting writers poll with a backoff, and under steady writes one can lose
    /// every race until it times out.
    pub async fn observe_write<T>(
        &self,
        operation: &'static str,
        future: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StorageError> {
        let writes = self.writes.clone();
        self.observe(operation, async move {
            let _turn = match &writes {
                Some(queue) => Some(queue.turn().await),
                None => None,
            };
            future.await
        })
        .await
    }

    /// Maps a sqlx error of this database into a [`StorageError`] kind, by its dialect's rules.
    pub fn map_error(&self, error: sqlx::Error) -> StorageError {
        match self.pool {
            SqlPool::Sqlite(_) => sqlite::map_sqlx_error(error),
            SqlPool::Postgres(_) => postgres::map_sqlx_error(error),
            SqlPool::Mysql(_) => mysql::map_sqlx_error(error),
        }
    }

    /// A cheap round trip that proves the database answers; feeds `/readyz`.
    pub async fn ping(&self) -> Result<(), StorageError> {
        let ping = async {
            match &self.pool {
                SqlPool::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
                SqlPool::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
                SqlPool::Mysql(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            }
        };
        self.observe("ping", ping).await
    }

    /// Applies the migrations of this dialect that `<namespace>_migrations` does not list yet.
    async fn migrate(&self, namespace: &str, migrations: &Migrations) -> Result<(), StorageError> {
        let table = format!("{namespace}_migrations");
        migrate::run(&self.pool, &table, &migrations.for_pool(&self.pool))
            .await
            .map_err(|error| self.map_error(error))
    }
}

/// Whether `error` is a unique-constraint violation (a duplicate key), so the caller can turn it
/// into a 4xx answer at the call site.
pub fn is_unique_violation(error: &StorageError) -> bool {
    let source = match error {
        StorageError::Backend(source) | StorageError::Unavailable(source) => source,
        StorageError::InvalidUrl(_) => return false,
    };
    match source.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(database)) => database.is_unique_violation(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_is_a_pooled_file_of_its_own_that_goes_with_the_last_handle() {
        let settings = StorageSettings {
            url: crate::config::SecretUrl::new("memory:"),
            max_connections: 4,
            ..StorageSettings::default()
        };
        let migrations = Migrations {
            sqlite: &[],
            postgres: &[],
            mysql: &[],
        };
        let database = SqlDatabase::open(&settings, "scratch", &migrations, true)
            .await
            .unwrap();
        let other = SqlDatabase::open(&settings, "scratch", &migrations, true)
            .await
            .unwrap();
        let SqlPool::Sqlite(pool) = database.pool() else {
            panic!("memory: is SQLite");
        };
        sqlx::query("CREATE TABLE t (n INTEGER)")
            .execute(pool)
            .await
            .unwrap();
        // Two connections at once see one database: a file's pool, not a single connection.
        let (mut first, mut second) =
            (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut *first)
            .await
            .unwrap();
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut *second)
            .await
            .unwrap();
        assert_eq!(seen, 1);
        // Each `memory:` is a database of its own.
        let SqlPool::Sqlite(other_pool) = other.pool() else {
            panic!("memory: is SQLite");
        };
        let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 't'")
            .fetch_one(other_pool)
            .await
            .unwrap();
        assert_eq!(tables, 0);

        let dir = database
            ._scratch
            .as_ref()
            .map(|scratch| scratch.url())
            .unwrap();
        let file = std::path::PathBuf::from(dir.trim_start_matches("sqlite://"));
        assert!(file.exists());
        drop((first, second));
        pool.close().await;
        drop(database);
        assert!(!file.exists(), "{} outlived its database", file.display());
    }
}
