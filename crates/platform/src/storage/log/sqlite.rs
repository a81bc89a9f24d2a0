//! `sqlite:` — streams in two tables of one SQLite file, for a single instance.
//!
//! Tables: `log_<namespace>` (`stream`, `seq`, `data`, primary key `(stream, seq)`) and
//! `log_<namespace>_heads` (`stream` primary key, `seq` of its last entry). The file is a
//! [`SqliteFile`], as the key–value store's is: WAL with `synchronous = FULL`, a busy timeout of
//! the operation timeout, reads on the calling thread from pooled read connections, and appends
//! through the file's group-commit writer, so appends that arrive while a commit is in flight
//! share the next commit and its one `fsync`.
//!
//! Capabilities:
//! - [x] append (all of a call's entries or none, consecutive numbers), read after, read last
//! - [x] retention: exact; entries older than the last `retain` are deleted by the append that
//!   pushes them out
//! - [x] atomic numbering across processes sharing the file: every group commit is a
//!   `BEGIN IMMEDIATE` transaction, which holds SQLite's write lock, and the appends inside it
//!   run one after another
//! - [x] durability: an append is acknowledged only after the commit that holds it synced, so
//!   it survives `kill -9` and power loss
//! - [x] a failing append fails alone: it runs in a savepoint of its own, which its error rolls
//!   back (head and entries together), while the rest of its group commits
//! - [x] schema creation (`migrate`), through the SQL layer's migration runner
//! - [ ] sharing between hosts: one file on one machine

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::sql::{Statements, entries, from_column, to_column, to_count};
use super::{Entries, Log, validate_read, validate_stream};
use crate::storage::pool::SqlConnections;
use crate::storage::sql::Dialect;
use crate::storage::sqlite::{Durability, SqliteFile};
use crate::storage::{ConnectOptions, StorageError, validate_namespace};

/// The streams of one namespace in one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteLog {
    file: SqliteFile,
    retain: usize,
    sql: Arc<Statements>,
}

impl SqliteLog {
    /// Opens (creating when missing) the database named by `url` and, when `migrate` is true,
    /// the tables of `namespace`; each stream keeps its last `retain` entries (at least 1).
    pub async fn connect(
        url: &str,
        namespace: &str,
        retain: usize,
        migrate: bool,
        options: &ConnectOptions,
    ) -> Result<SqliteLog, StorageError> {
        validate_namespace(namespace)?;
        let log = SqliteLog {
            file: SqliteFile::open(url, options, Durability::Synced).await?,
            retain: retain.max(1),
            sql: Arc::new(Statements::new(namespace, &Dialect::SQLITE)),
        };
        if migrate {
            log.sql
                .create_tables(SqlConnections::Sqlite(&log.file))
                .await?;
        }
        Ok(log)
    }

    /// Drops the namespace's tables and everything in them: for test clean-up and
    /// decommissioning.
    pub async fn drop_namespace(&self) -> Result<(), StorageError> {
        let sql = self.sql.clone();
        self.file
            .write(move |connection| {
                for drop in [&sql.drop_entries, &sql.drop_heads, &sql.drop_record] {
                    connection.execute(drop, [])?;
                }
                Ok(())
            })
            .await
    }

    /// Lets go of the file: later calls fail, and the writer closes once its queue is done.
    pub async fn close(&self) {
        self.file.close();
    }
}

/// One append on the writer thread, inside the savepoint the group commit gives it: advancing
/// the head numbers the entries, then they are inserted and what retention pushes out deleted.
/// Returns the first entry's number.
fn append(
    connection: &Connection,
    sql: &Statements,
    retain: usize,
    stream: &str,
    entries: &[Vec<u8>],
) -> rusqlite::Result<i64> {
    let count = to_count(entries.len());
    let last: i64 = connection
        .prepare_cached(&sql.advance_head)?
        .query_row(params![stream, count], |row| row.get(0))?;
    let first = last - count + 1;
    // Entries that retention would drop at once are numbered but never written.
    let skipped = entries.len().saturating_sub(retain);
    // One prepared single-row insert per entry: on SQLite a statement is a function call, not
    // a round trip, so a multi-row `INSERT` would only cost parsing a new statement per size.
    let mut insert = connection.prepare_cached(&sql.insert)?;
    for (seq, data) in (first + to_count(skipped)..).zip(&entries[skipped..]) {
        insert.execute(params![stream, seq, data])?;
    }
    let oldest_kept = last - to_count(retain) + 1;
    if oldest_kept > 1 {
        connection
            .prepare_cached(&sql.trim)?
            .execute(params![stream, oldest_kept - 1])?;
    }
    Ok(first)
}

/// Rows of `(seq, data)` from `statement` with `parameters`.
fn rows(
    connection: &Connection,
    statement: &str,
    parameters: impl rusqlite::Params,
) -> rusqlite::Result<Vec<(i64, Vec<u8>)>> {
    connection
        .prepare_cached(statement)?
        .query_map(parameters, |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect()
}

#[async_trait]
impl Log for SqliteLog {
    async fn append(&self, stream: &str, entries: &[Vec<u8>]) -> Result<u64, StorageError> {
        validate_stream(stream)?;
        if entries.is_empty() {
            let head: Option<i64> = self.file.read(|connection| {
                connection
                    .prepare_cached(&self.sql.head)?
                    .query_row([stream], |row| row.get(0))
                    .optional()
            })?;
            return Ok(from_column(head.unwrap_or(0))? + 1);
        }
        let (sql, retain) = (self.sql.clone(), self.retain);
        let (stream, entries) = (stream.to_owned(), entries.to_vec());
        let first = self
            .file
            .write(move |connection| append(connection, &sql, retain, &stream, &entries))
            .await?;
        from_column(first)
    }

    async fn read_after(&self, stream: &str, after: u64, limit: usize) -> Entries {
        if !validate_read(stream, limit)? {
            return Ok(Vec::new());
        }
        let parameters = params![stream, to_column(after), to_count(limit)];
        let rows = self
            .file
            .read(|connection| rows(connection, &self.sql.read_after, parameters))?;
        entries(rows)
    }

    async fn read_last(&self, stream: &str, limit: usize) -> Entries {
        if !validate_read(stream, limit)? {
            return Ok(Vec::new());
        }
        let parameters = params![stream, to_count(limit)];
        let mut rows = self
            .file
            .read(|connection| rows(connection, &self.sql.read_last, parameters))?;
        rows.reverse();
        entries(rows)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.file
            .read(|connection| connection.query_row("SELECT 1", [], |_| Ok(())))
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::storage::sqlite::GroupCommitOptions;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_queued_behind_a_commit_share_the_next_one_and_a_failing_append_fails_alone() {
        let file = std::env::temp_dir().join(format!("platform-log-{}.db", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}", file.display());
        let options = ConnectOptions {
            max_connections: 4,
            connect_timeout: Duration::from_secs(2),
            // Long enough that the writer outwaits the test's own lock on a loaded machine.
            operation_timeout: Duration::from_secs(60),
            startup_timeout: Duration::from_secs(30),
            group_commit: GroupCommitOptions {
                max_writes: 256,
                max_delay: Duration::from_secs(60),
                queue: 1024,
            },
        };
        let log = SqliteLog::connect(&url, "group", 10, true, &options)
            .await
            .unwrap();
        // Another process's connection: a trigger that refuses one entry, and a write lock that
        // holds the writer while 64 appends queue up.
        let other = Connection::open(&file).unwrap();
        other
            .execute_batch(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON log_group \
                 WHEN NEW.data = CAST('poison' AS BLOB) BEGIN SELECT RAISE(ABORT, 'poisoned'); END; \
                 BEGIN IMMEDIATE;",
            )
            .unwrap();
        let commits_before = log.file.commits();
        let streams: Vec<String> = (0..63)
            .map(|n| format!("room-{n:02}"))
            .chain(["poisoned".to_owned()])
            .collect();
        let appends: Vec<_> = streams
            .iter()
            .map(|stream| {
                let (log, stream) = (log.clone(), stream.clone());
                tokio::spawn(async move {
                    let data = match stream.as_str() {
                        "poisoned" => b"poison".to_vec(),
                        _ => stream.clone().into_bytes(),
                    };
                    log.append(&stream, &[data]).await
                })
            })
            .collect();
        // The writer holds one append, waiting for the lock; the other 63 queue behind it.
        tokio::time::timeout(Duration::from_secs(30), async {
            while log.file.queued() < 63 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the appends never queued");
        other.execute_batch("COMMIT").unwrap();

        for (stream, append) in streams.iter().zip(appends) {
            let result = append.await.unwrap();
            if stream == "poisoned" {
                let error = result.expect_err("the refused append must fail");
                assert!(!error.is_temporary(), "{error:?}");
            } else {
                assert_eq!(result.unwrap(), 1, "{stream}");
                let read = log.read_after(stream, 0, 10).await.unwrap();
                assert_eq!(read.len(), 1, "{stream}");
                assert_eq!(read[0].data, stream.as_bytes());
            }
        }
        assert_eq!(
            log.file.commits() - commits_before,
            1,
            "the 64 appends were one group commit"
        );
        // The refused append took its number back with it: the stream's head never moved.
        assert!(log.read_after("poisoned", 0, 10).await.unwrap().is_empty());
        assert_eq!(log.append("poisoned", &[]).await.unwrap(), 1);
        assert_eq!(
            log.append("poisoned", &[b"fine".to_vec()]).await.unwrap(),
            1
        );
        drop(other);
        log.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let mut path = file.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}
