//! `memory:` — an embedded key–value store inside the process, for single-instance
//! deployments and demos that need no server. Data lives as long as the process.
//!
//! Capabilities:
//! - [x] get, put, put-if-absent, delete
//! - [x] ordered scan with a cursor (a `BTreeMap` orders `String` keys by their bytes)
//! - [x] atomic put-if-absent (one write lock per operation)
//! - [x] atomic batches (one write lock per batch)
//! - [ ] durability: everything is lost on restart
//! - [ ] sharing between processes

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;

use super::{BatchOutcome, BatchWrite, KeyValue, ScanPage, StorageError};

/// The in-process backend: an ordered map behind a read–write lock.
#[derive(Debug, Default)]
pub struct MemoryKeyValue {
    entries: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl MemoryKeyValue {
    /// An empty store.
    pub fn new() -> MemoryKeyValue {
        MemoryKeyValue::default()
    }
}

/// A poisoned lock means a thread panicked mid-operation; the map may be half-written, so
/// every later call reports a backend failure rather than serving it.
fn map_poison_error<T>(_: PoisonError<T>) -> StorageError {
    StorageError::Backend("the in-memory store is poisoned by an earlier panic".into())
}

#[async_trait]
impl KeyValue for MemoryKeyValue {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let entries = self.entries.read().map_err(map_poison_error)?;
        Ok(entries.get(key).cloned())
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        let mut entries = self.entries.write().map_err(map_poison_error)?;
        entries.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: &[u8]) -> Result<bool, StorageError> {
        let mut entries = self.entries.write().map_err(map_poison_error)?;
        if entries.contains_key(key) {
            return Ok(false);
        }
        entries.insert(key.to_owned(), value.to_vec());
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        let mut entries = self.entries.write().map_err(map_poison_error)?;
        Ok(entries.remove(key).is_some())
    }

    /// `limit` is clamped to at least 1, as in every backend.
    async fn scan(&self, after: Option<&str>, limit: usize) -> Result<ScanPage, StorageError> {
        let limit = limit.max(1);
        let entries = self.entries.read().map_err(map_poison_error)?;
        let lower = match after {
            Some(after) => Bound::Excluded(after),
            None => Bound::Unbounded,
        };
        let rows: Vec<(String, Vec<u8>)> = entries
            .range::<str, _>((lower, Bound::Unbounded))
            .take(limit + 1)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        // One row past the page tells whether another page follows.
        Ok(ScanPage::from_rows(rows, limit))
    }

    async fn write_batch(&self, writes: &[BatchWrite]) -> Result<BatchOutcome, StorageError> {
        // One write lock for the whole batch: readers see it all or none of it. Inserts are
        // checked first, against the map as each earlier write of the batch leaves it.
        let mut entries = self.entries.write().map_err(map_poison_error)?;
        let mut written: HashMap<&str, bool> = HashMap::new();
        for write in writes {
            let key = write.key();
            let present = |key: &str| {
                written
                    .get(key)
                    .copied()
                    .unwrap_or_else(|| entries.contains_key(key))
            };
            if matches!(write, BatchWrite::Insert { .. }) && present(key) {
                return Ok(BatchOutcome::Conflict {
                    key: key.to_owned(),
                });
            }
            written.insert(key, !matches!(write, BatchWrite::Delete { .. }));
        }
        for write in writes {
            match write {
                BatchWrite::Put { key, value } | BatchWrite::Insert { key, value } => {
                    entries.insert(key.clone(), value.clone());
                }
                BatchWrite::Delete { key } => {
                    entries.remove(key);
                }
            }
        }
        Ok(BatchOutcome::Applied)
    }

    async fn ping(&self) -> Result<(), StorageError> {
        // Proves the lock is usable, which is all this backend can fail on.
        drop(self.entries.read().map_err(map_poison_error)?);
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}
