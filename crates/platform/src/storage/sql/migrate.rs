//! The one migration runner of every SQL store: named, ordered steps applied once each,
//! recorded in a table of their own, under a lock so replicas starting together are safe.
//!
//! The loop (create the record table, skip what it lists, run each new step, record it) is
//! written once over a [`Session`]; what differs per dialect is only how the lock is taken and
//! released: PostgreSQL runs everything in one transaction under an advisory lock (its DDL is
//! transactional), MySQL holds a named lock on one connection (it commits DDL implicitly),
//! SQLite runs as one write of the file's group commit (rusqlite, in a `BEGIN IMMEDIATE`
//! transaction, which takes the file's write lock, and a savepoint of its own).

use std::future::ready;

use futures::future::BoxFuture;
use rusqlite::OptionalExtension;

use super::{mysql, postgres};
use crate::storage::StorageError;
use crate::storage::pool::SqlConnections;

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
    /// The steps for the dialect of `connections`.
    pub(crate) fn for_connections(&self, connections: SqlConnections<'_>) -> Vec<Step<'static>> {
        let migrations = match connections {
            SqlConnections::Sqlite(_) => self.sqlite,
            SqlConnections::Postgres(_) => self.postgres,
            SqlConnections::Mysql(_) => self.mysql,
        };
        migrations.iter().map(Step::from).collect()
    }
}

/// Applies the `steps` that `record_table` does not list yet, in order, on `connections`.
pub(crate) async fn run(
    connections: SqlConnections<'_>,
    record_table: &str,
    steps: &[Step<'_>],
) -> Result<(), StorageError> {
    match connections {
        SqlConnections::Sqlite(file) => {
            let sql = Sql::new(record_table, "?1", "?2", "TEXT PRIMARY KEY NOT NULL");
            let steps: Vec<(String, Vec<String>)> = steps
                .iter()
                .map(|step| {
                    let statements = step.statements.iter().map(|s| (*s).to_owned()).collect();
                    (step.name.to_owned(), statements)
                })
                .collect();
            // One write in the file's group commit: its transaction is `BEGIN IMMEDIATE`, which
            // holds the write lock, so two processes cannot both apply a step; and it runs in a
            // savepoint of its own, so a step that fails halfway leaves nothing behind.
            file.write(move |connection| {
                let statements: Vec<Vec<&str>> = steps
                    .iter()
                    .map(|(_, statements)| statements.iter().map(String::as_str).collect())
                    .collect();
                let steps: Vec<Step<'_>> = steps
                    .iter()
                    .zip(&statements)
                    .map(|((name, _), statements)| Step {
                        name: name.as_str(),
                        statements: statements.as_slice(),
                    })
                    .collect();
                let mut session = Session { connection, sql };
                // The session never waits (rusqlite answers at once), so its loop needs no
                // runtime; this is the writer thread, outside any.
                futures::executor::block_on(apply(&mut session, &steps))
            })
            .await
        }
        SqlConnections::Postgres(pool) => {
            let migrated = async {
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
            };
            migrated.await.map_err(postgres::map_sqlx_error)
        }
        SqlConnections::Mysql(pool) => {
            let migrated = async {
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
            };
            migrated.await.map_err(mysql::map_sqlx_error)
        }
    }
}

/// The runner's loop, the same for every dialect and driver.
async fn apply<E, S: Steps<E>>(session: &mut S, steps: &[Step<'_>]) -> Result<(), E> {
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

/// What the loop needs of a dialect's connection while it holds the lock; `E` is the driver's
/// error. The futures are boxed (as `async_trait` would), and `E` is a parameter rather than an
/// associated type: with either of the other spellings rustc cannot prove the sqlx sessions'
/// loop `Send` for every lifetime, which the callers' spawned tasks need. The rusqlite session
/// answers at once, with a ready future.
trait Steps<E> {
    fn execute<'a>(&'a mut self, statement: &'a str) -> BoxFuture<'a, Result<(), E>>;
    fn create_record_table(&mut self) -> BoxFuture<'_, Result<(), E>>;
    fn applied<'a>(&'a mut self, name: &'a str) -> BoxFuture<'a, Result<bool, E>>;
    fn record<'a>(&'a mut self, name: &'a str) -> BoxFuture<'a, Result<(), E>>;
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

/// SQLite's connection on the file's writer thread, inside the group commit's transaction.
impl Steps<rusqlite::Error> for Session<&rusqlite::Connection> {
    fn execute<'a>(&'a mut self, statement: &'a str) -> BoxFuture<'a, rusqlite::Result<()>> {
        Box::pin(ready(self.connection.execute_batch(statement)))
    }

    fn create_record_table(&mut self) -> BoxFuture<'_, rusqlite::Result<()>> {
        Box::pin(ready(self.connection.execute_batch(&self.sql.create)))
    }

    fn applied<'a>(&'a mut self, name: &'a str) -> BoxFuture<'a, rusqlite::Result<bool>> {
        let row = self
            .connection
            .query_row(&self.sql.applied, [name], |_| Ok(()))
            .optional();
        Box::pin(ready(row.map(|row| row.is_some())))
    }

    fn record<'a>(&'a mut self, name: &'a str) -> BoxFuture<'a, rusqlite::Result<()>> {
        let recorded = self
            .connection
            .execute(&self.sql.record, rusqlite::params![name, now_seconds()]);
        Box::pin(ready(recorded.map(drop)))
    }
}

/// [`Steps`] for a session over `$connection`, whose `&mut *connection` executes queries.
macro_rules! impl_steps_over_sqlx {
    ($connection:ty) => {
        impl Steps<sqlx::Error> for Session<$connection> {
            fn execute<'a>(
                &'a mut self,
                statement: &'a str,
            ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
                Box::pin(async move {
                    sqlx::query(statement)
                        .execute(&mut *self.connection)
                        .await
                        .map(drop)
                })
            }

            fn create_record_table(&mut self) -> BoxFuture<'_, Result<(), sqlx::Error>> {
                Box::pin(async move {
                    sqlx::query(&self.sql.create)
                        .execute(&mut *self.connection)
                        .await
                        .map(drop)
                })
            }

            fn applied<'a>(
                &'a mut self,
                name: &'a str,
            ) -> BoxFuture<'a, Result<bool, sqlx::Error>> {
                Box::pin(async move {
                    let row = sqlx::query(&self.sql.applied)
                        .bind(name)
                        .fetch_optional(&mut *self.connection)
                        .await?;
                    Ok(row.is_some())
                })
            }

            fn record<'a>(&'a mut self, name: &'a str) -> BoxFuture<'a, Result<(), sqlx::Error>> {
                Box::pin(async move {
                    sqlx::query(&self.sql.record)
                        .bind(name)
                        .bind(now_seconds())
                        .execute(&mut *self.connection)
                        .await
                        .map(drop)
                })
            }
        }
    };
}

impl_steps_over_sqlx!(sqlx::Transaction<'static, sqlx::Postgres>);
impl_steps_over_sqlx!(sqlx::pool::PoolConnection<sqlx::MySql>);
