//! A relational database of the service's own schema, for services whose data does not fit the
//! key–value shape (notes: users, pads, notes, sessions).
//!
//! [`SqlDatabase::open`] opens a pool from `storage.url` (`sqlite:`, `postgres:`, `mysql:`; and
//! `memory:` as an unsynced SQLite file that is removed with the process's last handle on it) with the same limits as the key–value backends,
//! applies the service's migrations for that dialect, and hands back the typed pool in a
//! [`SqlPool`]. The service writes its SQL per dialect (placeholders `?` against `$1`, upserts and
//! `RETURNING` differ), and runs every statement through [`SqlDatabase::observe`], which bounds
//! it by `storage.operation_timeout`, records `db_client_operation_duration_seconds` and maps
//! sqlx errors into [`StorageError`] kinds with each dialect's own mapping.
//!
//! The pool comes from the dialect's module of the SQL layer (`storage::sql`), as every SQL
//! store's does, and so does the error mapping. Migrations are named, ordered lists of statements
//! per dialect, applied by the layer's one runner: recorded in the table
//! `<namespace>_migrations`, each runs once, under a lock, so replicas starting together are safe.

use std::future::Future;
use std::sync::Arc;

use sqlx::mysql::MySqlPool;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use super::instrumented::{Meter, ok};
pub use super::sql::migrate::{Migration, Migrations};
use super::sql::{migrate, mysql, postgres, sqlite};
use super::sqlite::{Durability, SqliteFile};
use super::{ConnectOptions, StorageError, validate_namespace};
use crate::config::StorageSettings;

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

/// What a service's statements run on, by dialect: see [`SqlDatabase::connections`].
#[derive(Debug, Clone, Copy)]
pub enum SqlConnections<'a> {
    /// SQLite through rusqlite: reads on the calling thread, writes in group commits.
    Sqlite(&'a SqliteFile),
    /// PostgreSQL.
    Postgres(&'a PgPool),
    /// MySQL or MariaDB.
    Mysql(&'a MySqlPool),
}

/// [`SqlConnections`], owned; chosen with the pool, so the two always name one dialect.
#[derive(Debug, Clone)]
enum Direct {
    Sqlite(SqliteFile),
    Postgres(PgPool),
    Mysql(MySqlPool),
}

/// A pool with the service's schema applied, its timeout and its metrics.
#[derive(Debug, Clone)]
pub struct SqlDatabase {
    pool: SqlPool,
    /// Timeout and `db_client_operation_duration_seconds`, as for every storage trait.
    meter: Arc<Meter>,
    /// What the service's statements and migrations run on; on SQLite the file as rusqlite
    /// talks to it, and the sqlx pool is only what [`pool`](Self::pool) hands out.
    direct: Direct,
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
        let (pool, direct) = match (scheme, &scratch) {
            (_, Some(scratch)) => (
                SqlPool::Sqlite(sqlite::connect_scratch_pool(scratch, &options).await?),
                Direct::Sqlite(
                    SqliteFile::open(&scratch.url(), &options, Durability::Unsynced).await?,
                ),
            ),
            ("sqlite", _) => (
                SqlPool::Sqlite(sqlite::connect_pool(url, &options).await?),
                Direct::Sqlite(SqliteFile::open(url, &options, Durability::Synced).await?),
            ),
            ("postgres" | "postgresql", _) => {
                let pool = postgres::connect_pool(url, &options).await?;
                (SqlPool::Postgres(pool.clone()), Direct::Postgres(pool))
            }
            ("mysql" | "mariadb", _) => {
                let pool = mysql::connect_pool(url, &options).await?;
                (SqlPool::Mysql(pool.clone()), Direct::Mysql(pool))
            }
            (other, _) => {
                return Err(StorageError::InvalidUrl(format!(
                    "unknown scheme `{other}:` for a SQL database; expected one of memory:, \
                     sqlite:, postgres:, mysql:"
                )));
            }
        };
        let meter = Meter::new(
            backend_name(&pool),
            Some(options.operation_timeout),
            &[],
            &[],
        );
        let database = SqlDatabase {
            pool,
            meter: Arc::new(meter),
            direct,
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

    /// What the service's statements run on: on SQLite (and `memory:`) the file's direct
    /// connections (reads on the calling thread, writes through its group commit; run them
    /// through [`observe_storage`](Self::observe_storage) for the timeout and the metric), and
    /// the sqlx pool on the server databases.
    pub fn connections(&self) -> SqlConnections<'_> {
        match &self.direct {
            Direct::Sqlite(file) => SqlConnections::Sqlite(file),
            Direct::Postgres(pool) => SqlConnections::Postgres(pool),
            Direct::Mysql(pool) => SqlConnections::Mysql(pool),
        }
    }

    /// `sqlite`, `postgres` or `mysql`, as in metrics and `/info`.
    pub fn backend(&self) -> &'static str {
        backend_name(&self.pool)
    }

    /// Runs one storage operation named `operation` (a fixed name: it becomes a metric label)
    /// under `storage.operation_timeout`, records its duration and outcome, and maps its error.
    pub async fn observe<T>(
        &self,
        operation: &'static str,
        future: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StorageError> {
        self.observe_storage(operation, async {
            future.await.map_err(|error| self.map_error(error))
        })
        .await
    }

    /// [`observe`](Self::observe) for an operation whose errors are already [`StorageError`]s,
    /// such as one on [`connections`](Self::connections)' SQLite file. Timed by the same meter
    /// as every storage trait's operations.
    pub async fn observe_storage<T>(
        &self,
        operation: &'static str,
        future: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        self.meter.observe(operation, future, ok).await
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
    /// On SQLite through the same direct connections as the statements, so the sqlx pool (and
    /// its worker thread per connection) is not kept warm for the health check alone.
    pub async fn ping(&self) -> Result<(), StorageError> {
        let ping = async {
            match &self.direct {
                Direct::Sqlite(file) => {
                    file.read(|connection| connection.query_row("SELECT 1", [], |_| Ok(())))
                }
                Direct::Postgres(pool) => super::sql::ping(pool, postgres::map_sqlx_error).await,
                Direct::Mysql(pool) => super::sql::ping(pool, mysql::map_sqlx_error).await,
            }
        };
        self.observe_storage("ping", ping).await
    }

    /// Applies the migrations of this dialect that `<namespace>_migrations` does not list yet;
    /// on SQLite as one write of the file's group commit.
    async fn migrate(&self, namespace: &str, migrations: &Migrations) -> Result<(), StorageError> {
        let table = format!("{namespace}_migrations");
        let connections = self.connections();
        migrate::run(
            connections,
            &table,
            &migrations.for_connections(connections),
        )
        .await
    }
}

fn backend_name(pool: &SqlPool) -> &'static str {
    match pool {
        SqlPool::Sqlite(_) => "sqlite",
        SqlPool::Postgres(_) => "postgres",
        SqlPool::Mysql(_) => "mysql",
    }
}

/// Whether `error` is a unique-constraint violation (a duplicate key), so the caller can turn it
/// into a 4xx answer at the call site.
pub fn is_unique_violation(error: &StorageError) -> bool {
    let source = match error {
        StorageError::Backend(source) | StorageError::Unavailable(source) => source,
        StorageError::InvalidUrl(_) => return false,
    };
    if let Some(rusqlite::Error::SqliteFailure(failure, _)) = source.downcast_ref() {
        return matches!(
            failure.extended_code,
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        );
    }
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
