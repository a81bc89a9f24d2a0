//! The one migration runner of every SQL store on sqlx: named, ordered steps applied once each,
//! recorded in a table of their own, under a lock so replicas starting together are safe.
//!
//! The loop (create the record table, skip what it lists, run each new step, record it) is
//! written once over a [`Session`]; what differs per dialect is only how the lock is taken and
//! released: PostgreSQL runs everything in one transaction under an advisory lock (its DDL is
//! transactional), MySQL holds a named lock on one connection (it commits DDL implicitly),
//! SQLite runs one `BEGIN IMMEDIATE` transaction (which takes the file's write lock).

use async_trait::async_trait;

use crate::storage::pool::SqlPool;

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

/// One step as the runner takes it: a [`Migration`], or a store's own table creation whose
/// statements name its namespace's tables (formatted at run time).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Step<'a> {
    pub(crate) name: &'a str,
    pub(crate) statements: &'a [&'a str],
}

impl<'a> From<&'a Migration> for Step<'a> {
    fn from(migration: &'a Migration) -> Step<'a> {
        Step {
            name: migration.name,
            statements: migration.statements,
        }
    }
}

impl Migrations {
    /// The steps for the dialect of `pool`.
    pub(crate) fn for_pool(&self, pool: &SqlPool) -> Vec<Step<'static>> {
        let migrations = match pool {
            SqlPool::Sqlite(_) => self.sqlite,
            SqlPool::Postgres(_) => self.postgres,
            SqlPool::Mysql(_) => self.mysql,
        };
        migrations.iter().map(Step::from).collect()
    }
}

/// Applies the `steps` that `record_table` does not list yet, in order, on `pool`.
pub(crate) async fn run(
    pool: &SqlPool,
    record_table: &str,
    steps: &[Step<'_>],
) -> Result<(), sqlx::Error> {
    match pool {
        SqlPool::Sqlite(pool) => {
            let mut session = Session {
                connection: pool.acquire().await?,
                sql: Sql::new(record_table, "?1", "?2", "TEXT PRIMARY KEY NOT NULL"),
            };
            // IMMEDIATE takes the write lock now, so two processes cannot both apply a step.
            session.execute("BEGIN IMMEDIATE").await?;
            let result = apply(&mut session, steps).await;
            let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
            session.execute(end).await?;
            result
        }
        SqlPool::Postgres(pool) => {
            let mut session = Session {
                connection: pool.begin().await?,
                sql: Sql::new(record_table, "$1", "$2", "TEXT PRIMARY KEY"),
            };
            sqlx::query(
                "SELECT pg_advisory_xact_lock(hashtext('platform.migrations'), hashtext($1))",
            )
            .bind(record_table)
            .execute(&mut *session.connection)
            .await?;
            apply(&mut session, steps).await?;
            session.connection.commit().await
        }
        SqlPool::Mysql(pool) => {
            let mut session = Session {
                connection: pool.acquire().await?,
                sql: Sql::new(record_table, "?", "?", "VARCHAR(255) NOT NULL PRIMARY KEY"),
            };
            let lock = format!("platform.migrations.{record_table}");
            sqlx::query("SELECT GET_LOCK(?, 30)")
                .bind(&lock)
                .execute(&mut *session.connection)
                .await?;
            let result = apply(&mut session, steps).await;
            sqlx::query("SELECT RELEASE_LOCK(?)")
                .bind(&lock)
                .execute(&mut *session.connection)
                .await?;
            result
        }
    }
}

/// The runner's loop, the same for every dialect.
async fn apply(session: &mut dyn Steps, steps: &[Step<'_>]) -> Result<(), sqlx::Error> {
    session.create_record_table().await?;
    for step in steps {
        if session.applied(step.name).await? {
            continue;
        }
        for statement in step.statements {
            session.execute(statement).await?;
        }
        session.record(step.name).await?;
        tracing::info!(migration = step.name, "Migration applied.");
    }
    Ok(())
}

/// What the loop needs of a dialect's connection while it holds the lock.
#[async_trait]
trait Steps: Send {
    async fn execute(&mut self, statement: &str) -> Result<(), sqlx::Error>;
    async fn create_record_table(&mut self) -> Result<(), sqlx::Error>;
    async fn applied(&mut self, name: &str) -> Result<bool, sqlx::Error>;
    async fn record(&mut self, name: &str) -> Result<(), sqlx::Error>;
}

/// The record table's statements in one dialect.
struct Sql {
    create: String,
    applied: String,
    record: String,
}

impl Sql {
    fn new(table: &str, first: &str, second: &str, name_column: &str) -> Sql {
        Sql {
            create: format!(
                "CREATE TABLE IF NOT EXISTS {table} (name {name_column}, applied_at BIGINT NOT NULL)"
            ),
            applied: format!("SELECT name FROM {table} WHERE name = {first}"),
            record: format!("INSERT INTO {table} (name, applied_at) VALUES ({first}, {second})"),
        }
    }
}

/// A connection (or transaction) of one dialect, holding the lock.
struct Session<C> {
    connection: C,
    sql: Sql,
}

/// Seconds since the Unix epoch, as the record table keeps it.
fn now_seconds() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// [`Steps`] for a session over `$connection`, whose `&mut *connection` executes queries.
macro_rules! impl_steps {
    ($connection:ty) => {
        #[async_trait]
        impl Steps for Session<$connection> {
            async fn execute(&mut self, statement: &str) -> Result<(), sqlx::Error> {
                sqlx::query(statement)
                    .execute(&mut *self.connection)
                    .await
                    .map(drop)
            }

            async fn create_record_table(&mut self) -> Result<(), sqlx::Error> {
                sqlx::query(&self.sql.create)
                    .execute(&mut *self.connection)
                    .await
                    .map(drop)
            }

            async fn applied(&mut self, name: &str) -> Result<bool, sqlx::Error> {
                let row = sqlx::query(&self.sql.applied)
                    .bind(name)
                    .fetch_optional(&mut *self.connection)
                    .await?;
                Ok(row.is_some())
            }

            async fn record(&mut self, name: &str) -> Result<(), sqlx::Error> {
                sqlx::query(&self.sql.record)
                    .bind(name)
                    .bind(now_seconds())
                    .execute(&mut *self.connection)
                    .await
                    .map(drop)
            }
        }
    };
}

impl_steps!(sqlx::pool::PoolConnection<sqlx::Sqlite>);
impl_steps!(sqlx::Transaction<'static, sqlx::Postgres>);
impl_steps!(sqlx::pool::PoolConnection<sqlx::MySql>);
