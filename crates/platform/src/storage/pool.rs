//! A relational database of the service's own schema, for services whose data does not fit the
//! key–value shape (notes: users, pads, notes, sessions).
//!
//! [`SqlDatabase::open`] opens a pool from `storage.url` (`sqlite:`, `postgres:`, `mysql:`; and
//! `memory:` as an in-process SQLite database) with the same limits as the key–value backends,
//! applies the service's migrations for that dialect, and hands back the typed pool in a
//! [`SqlPool`]. The service writes its SQL per dialect (placeholders `?` against `$1`, upserts and
//! `RETURNING` differ), and runs every statement through [`SqlDatabase::observe`], which bounds
//! it by `storage.operation_timeout`, records `storage_operation_duration_seconds` and maps
//! sqlx errors into [`StorageError`] kinds with each dialect's own mapping.
//!
//! Migrations are named, ordered lists of statements per dialect. Applied names are recorded in
//! the table `<namespace>_migrations`; each migration runs once, under a lock (PostgreSQL advisory
//! lock, MySQL `GET_LOCK`, SQLite's single writer), so replicas starting together are safe.

use std::future::Future;
use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{ConnectOptions, StorageError, validate_namespace};
use crate::config::StorageSettings;
use crate::metrics::names::STORAGE_OPERATION_DURATION;

/// One schema change: a name recorded once applied, and the statements that make it, in order.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Unique and stable, e.g. `0001_users`; recorded in `<namespace>_migrations`.
    pub name: &'static str,
    /// Run one by one, in order.
    pub statements: &'static [&'static str],
}

/// A service's migrations for every dialect, each list in the order to apply it.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    /// For `sqlite:` and `memory:`.
    pub sqlite: &'static [Migration],
    /// For `postgres:`.
    pub postgres: &'static [Migration],
    /// For `mysql:` and `mariadb:`.
    pub mysql: &'static [Migration],
}

/// The typed pool of one dialect. Cloning shares the pool.
#[derive(Debug, Clone)]
pub enum SqlPool {
    /// SQLite (WAL, `synchronous = FULL`), or an in-process database for `memory:`.
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
    writes: Option<super::sqlite::WriteQueue>,
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
        let pool = match scheme {
            "memory" => SqlPool::Sqlite(open_sqlite("sqlite::memory:", &options).await?),
            "sqlite" => SqlPool::Sqlite(open_sqlite(url, &options).await?),
            "postgres" | "postgresql" => SqlPool::Postgres(open_postgres(url, &options).await?),
            "mysql" | "mariadb" => SqlPool::Mysql(open_mysql(url, &options).await?),
            other => {
                return Err(StorageError::InvalidUrl(format!(
                    "unknown scheme `{other}:` for a SQL database; expected one of memory:, \
                     sqlite:, postgres:, mysql:"
                )));
            }
        };
        let writes = matches!(scheme, "sqlite").then(|| super::sqlite::WriteQueue::of(url));
        let database = SqlDatabase {
            pool,
            operation_timeout: options.operation_timeout,
            writes,
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
            SqlPool::Sqlite(_) => super::sqlite::map_sqlx_error(error),
            SqlPool::Postgres(_) => super::postgres::map_sqlx_error(error),
            SqlPool::Mysql(_) => super::mysql::map_sqlx_error(error),
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
        let result = match &self.pool {
            SqlPool::Sqlite(pool) => migrate_sqlite(pool, &table, migrations.sqlite).await,
            SqlPool::Postgres(pool) => migrate_postgres(pool, &table, migrations.postgres).await,
            SqlPool::Mysql(pool) => migrate_mysql(pool, &table, migrations.mysql).await,
        };
        result.map_err(|error| self.map_error(error))
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

/// Seconds since the Unix epoch, as migrations record it.
fn now_seconds() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn open_sqlite(url: &str, options: &ConnectOptions) -> Result<SqlitePool, StorageError> {
    let in_memory = super::sqlite::is_in_memory(url);
    let connect_options = SqliteConnectOptions::from_str(url)
        .map_err(|error| StorageError::InvalidUrl(format!("sqlite url: {error}")))?
        .create_if_missing(true)
        .foreign_keys(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL syncs the WAL on every commit: an acknowledged write is on disk.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(options.operation_timeout);
    if !in_memory {
        super::sqlite::create_parent_dir(connect_options.get_filename()).await?;
    }
    let mut pool_options = SqlitePoolOptions::new().acquire_timeout(options.connect_timeout);
    pool_options = if in_memory {
        // Each connection to `:memory:` sees its own database, which dies with its last
        // connection: keep exactly one open forever.
        pool_options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        pool_options.max_connections(options.max_connections.max(1))
    };
    pool_options
        .connect_with(connect_options)
        .await
        .map_err(super::sqlite::map_sqlx_error)
}

async fn open_postgres(url: &str, options: &ConnectOptions) -> Result<PgPool, StorageError> {
    // The parser's message never repeats the URL, so the password cannot leak through it.
    let connect_options = PgConnectOptions::from_str(url)
        .map_err(|error| StorageError::InvalidUrl(format!("postgres url: {error}")))?;
    // The acquire timeout also bounds opening a connection: a dead server fails fast.
    PgPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.connect_timeout)
        .test_before_acquire(true)
        .connect_with(connect_options)
        .await
        .map_err(super::postgres::map_sqlx_error)
}

async fn open_mysql(url: &str, options: &ConnectOptions) -> Result<MySqlPool, StorageError> {
    let url = match url.strip_prefix("mariadb:") {
        Some(rest) => format!("mysql:{rest}"),
        None => url.to_owned(),
    };
    let connect_options = MySqlConnectOptions::from_str(&url)
        .map_err(|error| StorageError::InvalidUrl(format!("mysql url: {error}")))?
        .charset("utf8mb4");
    MySqlPoolOptions::new()
        .max_connections(options.max_connections.max(1))
        .acquire_timeout(options.connect_timeout)
        .test_before_acquire(true)
        .connect_with(connect_options)
        .await
        .map_err(super::mysql::map_sqlx_error)
}

async fn migrate_sqlite(
    pool: &SqlitePool,
    table: &str,
    migrations: &[Migration],
) -> Result<(), sqlx::Error> {
    let mut connection = pool.acquire().await?;
    // IMMEDIATE takes the write lock now, so two processes cannot both apply a migration.
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *connection)
        .await?;
    let result = async {
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (name TEXT PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL)"
        ))
        .execute(&mut *connection)
        .await?;
        for migration in migrations {
            let applied = sqlx::query(&format!("SELECT name FROM {table} WHERE name = ?1"))
                .bind(migration.name)
                .fetch_optional(&mut *connection)
                .await?;
            if applied.is_some() {
                continue;
            }
            for statement in migration.statements {
                sqlx::query(statement).execute(&mut *connection).await?;
            }
            sqlx::query(&format!(
                "INSERT INTO {table} (name, applied_at) VALUES (?1, ?2)"
            ))
            .bind(migration.name)
            .bind(now_seconds())
            .execute(&mut *connection)
            .await?;
            tracing::info!(migration = migration.name, "Migration applied.");
        }
        Ok::<(), sqlx::Error>(())
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    sqlx::query(end).execute(&mut *connection).await?;
    result
}

async fn migrate_postgres(
    pool: &PgPool,
    table: &str,
    migrations: &[Migration],
) -> Result<(), sqlx::Error> {
    // PostgreSQL's DDL is transactional: all of it commits, or none of it.
    let mut transaction = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('platform.migrations'), hashtext($1))")
        .bind(table)
        .execute(&mut *transaction)
        .await?;
    sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)"
    ))
    .execute(&mut *transaction)
    .await?;
    for migration in migrations {
        let applied = sqlx::query(&format!("SELECT name FROM {table} WHERE name = $1"))
            .bind(migration.name)
            .fetch_optional(&mut *transaction)
            .await?;
        if applied.is_some() {
            continue;
        }
        for statement in migration.statements {
            sqlx::query(statement).execute(&mut *transaction).await?;
        }
        sqlx::query(&format!(
            "INSERT INTO {table} (name, applied_at) VALUES ($1, $2)"
        ))
        .bind(migration.name)
        .bind(now_seconds())
        .execute(&mut *transaction)
        .await?;
        tracing::info!(migration = migration.name, "Migration applied.");
    }
    transaction.commit().await
}

async fn migrate_mysql(
    pool: &MySqlPool,
    table: &str,
    migrations: &[Migration],
) -> Result<(), sqlx::Error> {
    // MySQL commits DDL implicitly, so a named lock held by this connection serialises
    // replicas instead of a transaction.
    let mut connection = pool.acquire().await?;
    let lock = format!("platform.migrations.{table}");
    sqlx::query("SELECT GET_LOCK(?, 30)")
        .bind(&lock)
        .execute(&mut *connection)
        .await?;
    let result = async {
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {table} \
             (name VARCHAR(255) NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL) ENGINE = InnoDB"
        ))
        .execute(&mut *connection)
        .await?;
        for migration in migrations {
            let applied = sqlx::query(&format!("SELECT name FROM {table} WHERE name = ?"))
                .bind(migration.name)
                .fetch_optional(&mut *connection)
                .await?;
            if applied.is_some() {
                continue;
            }
            for statement in migration.statements {
                sqlx::query(statement).execute(&mut *connection).await?;
            }
            sqlx::query(&format!(
                "INSERT INTO {table} (name, applied_at) VALUES (?, ?)"
            ))
            .bind(migration.name)
            .bind(now_seconds())
            .execute(&mut *connection)
            .await?;
            tracing::info!(migration = migration.name, "Migration applied.");
        }
        Ok::<(), sqlx::Error>(())
    }
    .await;
    sqlx::query("SELECT RELEASE_LOCK(?)")
        .bind(&lock)
        .execute(&mut *connection)
        .await?;
    result
}
