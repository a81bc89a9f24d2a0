//! One writer per SQLite file, committing many writes with one `fsync`.
//!
//! With `synchronous = FULL` every commit syncs the WAL, and a sync costs about as much as
//! hundreds of point writes; one commit per write caps a file at one sync's worth of writes per
//! second (about 2,700 on the disk this was measured on). So writes go to one thread that owns
//! the file's write connection. It takes the first waiting write, opens a transaction, runs
//! that write and every write that queued meanwhile (at most
//! [`GroupCommitOptions::max_writes`], for at most [`GroupCommitOptions::max_delay`]), commits
//! once, and only then answers each of them. The writes that arrive during that commit form the
//! next group, so the group grows with the load and a lone write waits for no one.
//!
//! - **Acknowledged means durable**: a write's caller hears `Ok` only after the `COMMIT` that
//!   holds it returned, and that commit synced the WAL.
//! - **One bad write fails only itself**: each runs inside its own `SAVEPOINT`; an error rolls
//!   back to it and the others of the group commit. An error after which SQLite rolled back the
//!   whole transaction (a full disk, say) fails the writes of the group, never acknowledges them.
//! - **Other processes stay safe**: the transaction is `BEGIN IMMEDIATE`, which takes SQLite's
//!   write lock (waiting up to the busy timeout), as any other writer to the file does.
//! - **Bounded**: at most [`GroupCommitOptions::queue`] writes wait; a writer finding it full
//!   waits for room within its operation timeout, like any slow backend.
//! - **Checkpoints off the write path**: SQLite's automatic checkpoint runs inside the `COMMIT`
//!   that grows the WAL past its threshold, copying up to a thousand pages into the database and
//!   syncing it while the whole group waits for its answer. The writer hands that to a thread of
//!   its own instead, which runs a `PASSIVE` checkpoint (it never waits for the writer or a
//!   reader) every [`CHECKPOINT_AFTER_WRITES`] writes. The writer keeps SQLite's automatic
//!   checkpoint only as a bound, at [`WRITER_AUTOCHECKPOINT_PAGES`], for a checkpointer that
//!   cannot keep up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::map_rusqlite_error;
use crate::storage::StorageError;

/// How writes are gathered; from `storage.group_commit_max_writes`,
/// `storage.group_commit_max_delay` and `storage.write_queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitOptions {
    /// Most writes in one commit.
    pub max_writes: usize,
    /// Longest a group keeps taking queued writes after its first one started.
    pub max_delay: Duration,
    /// Most writes waiting for the writer.
    pub queue: usize,
}

impl Default for GroupCommitOptions {
    fn default() -> Self {
        GroupCommitOptions {
            max_writes: 256,
            max_delay: Duration::from_millis(2),
            queue: 4096,
        }
    }
}

/// Writes committed after which the writer asks the checkpointer for a checkpoint: about as
/// many pages as SQLite's own default threshold (1,000 pages), since a point write dirties one
/// leaf page or shares it with its group.
pub(crate) const CHECKPOINT_AFTER_WRITES: u64 = 1_000;

/// The writer's own automatic checkpoint, kept as the bound on the WAL (about 40 MiB of 4 KiB
/// pages) should the checkpointer fall behind.
pub(crate) const WRITER_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// The sending side of a file's writer thread. Dropping the last clone lets the thread finish
/// the queued writes and close the connection.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommit {
    jobs: mpsc::Sender<Box<dyn Job>>,
    /// Commits made so far: how many groups the writes formed (what the tests check).
    #[cfg_attr(not(test), allow(dead_code))]
    commits: Arc<AtomicU64>,
    /// Checkpoints the checkpointer has run (what the tests check).
    #[cfg_attr(not(test), allow(dead_code))]
    checkpoints: Arc<AtomicU64>,
}

impl GroupCommit {
    /// Starts the writer thread on `connection` (shared with readers only for an in-memory
    /// database, which has a single connection), and the checkpointer's thread on
    /// `checkpointer`, a connection of its own to the same file (none for an in-memory
    /// database, which has no WAL).
    pub(crate) fn start(
        connection: Arc<Mutex<Connection>>,
        checkpointer: Option<Connection>,
        options: GroupCommitOptions,
        name: &str,
    ) -> Result<GroupCommit, StorageError> {
        let spawn_failed = |error: std::io::Error| {
            StorageError::Backend(format!("cannot start a SQLite thread: {error}").into())
        };
        let checkpoints = Arc::new(AtomicU64::new(0));
        let checkpoint = match checkpointer {
            Some(checkpointer) => {
                // One request waiting is enough: it checkpoints whatever the WAL holds by then.
                let (requests, received) = sync_channel(1);
                let counted = checkpoints.clone();
                std::thread::Builder::new()
                    .name(format!("sqlite-checkpoint-{name}"))
                    .spawn(move || checkpoint_loop(&checkpointer, &received, &counted))
                    .map_err(spawn_failed)?;
                Some(requests)
            }
            None => None,
        };
        let (jobs, queue) = mpsc::channel(options.queue.max(1));
        let commits = Arc::new(AtomicU64::new(0));
        let counted = commits.clone();
        std::thread::Builder::new()
            .name(format!("sqlite-writer-{name}"))
            .spawn(move || write_loop(&connection, queue, checkpoint, options, &counted))
            .map_err(spawn_failed)?;
        Ok(GroupCommit {
            jobs,
            commits,
            checkpoints,
        })
    }

    /// Runs `work` in the next group commit and answers once that commit is durable. `work`
    /// runs on the writer thread inside its own savepoint: returning an error rolls back what
    /// it did, and only it fails.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Typed {
            work: Some(work),
            output: None,
            reply,
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| StorageError::Unavailable("the SQLite writer has stopped".into()))?;
        answer.await.map_err(|_| {
            StorageError::Unavailable("the SQLite writer stopped before committing".into())
        })?
    }

    /// Writes waiting for the writer thread.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.jobs.max_capacity() - self.jobs.capacity()
    }

    /// Commits made so far, each holding one group of writes.
    #[cfg(test)]
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Checkpoints the checkpointer thread has run.
    #[cfg(test)]
    pub(crate) fn checkpoints(&self) -> u64 {
        self.checkpoints.load(Ordering::Acquire)
    }
}

/// A write as the writer thread sees it, whatever it returns.
trait Job: Send {
    /// Runs the write in a savepoint; `false` when it failed (and was rolled back).
    fn run(&mut self, connection: &Connection) -> bool;
    /// Answers the caller: the write's own error, else the commit's, else its output.
    fn finish(self: Box<Self>, commit: Option<&rusqlite::Error>);
}

struct Typed<T, F> {
    work: Option<F>,
    output: Option<rusqlite::Result<T>>,
    reply: oneshot::Sender<Result<T, StorageError>>,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send,
{
    fn run(&mut self, connection: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let output = connection
            .execute_batch("SAVEPOINT group_commit_write")
            .and_then(|()| work(connection));
        let end = match output {
            Ok(_) => "RELEASE group_commit_write",
            Err(_) => "ROLLBACK TO group_commit_write; RELEASE group_commit_write",
        };
        let ended = connection.execute_batch(end);
        let ok = output.is_ok() && ended.is_ok();
        self.output = Some(match (output, ended) {
            (Ok(value), Ok(())) => Ok(value),
            (Err(error), _) | (Ok(_), Err(error)) => Err(error),
        });
        ok
    }

    fn finish(self: Box<Self>, commit: Option<&rusqlite::Error>) {
        let result = match (self.output, commit) {
            (Some(Err(error)), _) => Err(map_rusqlite_error(error)),
            (Some(Ok(_)), Some(error)) | (None, Some(error)) => Err(commit_failed(error)),
            (Some(Ok(value)), None) => Ok(value),
            (None, None) => Err(StorageError::Backend("the write never ran".into())),
        };
        // A caller that gave up (timed out) no longer listens; the write's fate is as for any
        // timed-out write: it may or may not be stored.
        let _ = self.reply.send(result);
    }
}

/// The error every write of a group whose commit failed gets; same kind as the commit's.
fn commit_failed(error: &rusqlite::Error) -> StorageError {
    let message = format!("the SQLite commit failed: {error}");
    if super::is_temporary(error) {
        StorageError::Unavailable(message.into())
    } else {
        StorageError::Backend(message.into())
    }
}

/// Runs a checkpoint per request until the writer thread ends.
fn checkpoint_loop(
    connection: &Connection,
    requests: &std::sync::mpsc::Receiver<()>,
    checkpoints: &AtomicU64,
) {
    while requests.recv().is_ok() {
        // PASSIVE copies what no reader still needs and never waits on a lock. Its failure
        // loses nothing: the pages stay in the WAL for the next checkpoint (or the writer's own).
        let done = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        if done.is_ok() {
            checkpoints.fetch_add(1, Ordering::Release);
        }
    }
}

fn write_loop(
    connection: &Mutex<Connection>,
    mut queue: mpsc::Receiver<Box<dyn Job>>,
    checkpoint: Option<SyncSender<()>>,
    options: GroupCommitOptions,
    commits: &AtomicU64,
) {
    let mut since_checkpoint: u64 = 0;
    while let Some(first) = queue.blocking_recv() {
        // The lock is only ever shared with the readers of an in-memory database; a panic
        // while holding it cannot leave SQLite's own state half-written.
        let connection = connection.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
            first.finish(Some(&error));
            continue;
        }
        let started = Instant::now();
        let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(options.max_writes.min(64));
        let mut next = Some(first);
        let mut aborted = None;
        while let Some(mut job) = next.take() {
            job.run(&connection);
            group.push(job);
            if connection.is_autocommit() {
                // SQLite rolled the whole transaction back (I/O error, full disk): nothing of
                // the group is stored, so none of it may be acknowledged.
                aborted = Some(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                    Some("the transaction was rolled back by SQLite".to_owned()),
                ));
                break;
            }
            if group.len() >= options.max_writes || started.elapsed() >= options.max_delay {
                break;
            }
            next = queue.try_recv().ok();
        }
        let commit = match aborted {
            Some(error) => Err(error),
            None => connection.execute_batch("COMMIT"),
        };
        commits.fetch_add(1, Ordering::Relaxed);
        if commit.is_err() && !connection.is_autocommit() {
            // Leaves the connection usable for the next group.
            let _ = connection.execute_batch("ROLLBACK");
        }
        drop(connection);
        if commit.is_ok() {
            since_checkpoint += group.len() as u64;
        }
        if since_checkpoint >= CHECKPOINT_AFTER_WRITES
            && let Some(checkpoint) = &checkpoint
            // Full: a request is already waiting, and it covers these writes too.
            && let Ok(()) | Err(TrySendError::Full(())) = checkpoint.try_send(())
        {
            since_checkpoint = 0;
        }
        let error = commit.err();
        for job in group {
            job.finish(error.as_ref());
        }
    }
}
