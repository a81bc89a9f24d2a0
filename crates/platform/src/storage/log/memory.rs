//! `memory:` — streams in this process: a ring of the last `retain` entries per stream.
//!
//! Capabilities:
//! - [x] append (atomic, consecutive numbers), read after, read last
//! - [x] retention
//! - [ ] durability, sharing between processes

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Entries, Log, LogEntry, validate_read, validate_stream};
use crate::storage::StorageError;

/// The in-process log.
#[derive(Debug)]
pub struct MemoryLog {
    retain: usize,
    streams: Mutex<HashMap<String, Stream>>,
}

#[derive(Debug, Default)]
struct Stream {
    /// The sequence number of the last entry appended (0 before the first).
    last: u64,
    entries: VecDeque<LogEntry>,
}

impl MemoryLog {
    /// An empty log keeping the last `retain` entries of each stream.
    pub fn new(retain: usize) -> MemoryLog {
        MemoryLog {
            retain: retain.max(1),
            streams: Mutex::new(HashMap::new()),
        }
    }

    fn with_streams<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, Stream>) -> T,
    ) -> Result<T, StorageError> {
        let mut streams = self.streams.lock().map_err(|_| {
            StorageError::Backend("the in-memory log is poisoned by an earlier panic".into())
        })?;
        Ok(f(&mut streams))
    }
}

#[async_trait]
impl Log for MemoryLog {
    async fn append(&self, stream: &str, entries: &[Vec<u8>]) -> Result<u64, StorageError> {
        validate_stream(stream)?;
        self.with_streams(|streams| {
            let state = streams.entry(stream.to_owned()).or_default();
            let first = state.last + 1;
            for data in entries {
                state.last += 1;
                state.entries.push_back(LogEntry {
                    seq: state.last,
                    data: data.clone(),
                });
            }
            while state.entries.len() > self.retain {
                state.entries.pop_front();
            }
            first
        })
    }

    async fn read_after(&self, stream: &str, after: u64, limit: usize) -> Entries {
        if !validate_read(stream, limit)? {
            return Ok(Vec::new());
        }
        self.with_streams(|streams| {
            let Some(state) = streams.get(stream) else {
                return Vec::new();
            };
            let start = state.entries.partition_point(|entry| entry.seq <= after);
            state
                .entries
                .iter()
                .skip(start)
                .take(limit)
                .cloned()
                .collect()
        })
    }

    async fn read_last(&self, stream: &str, limit: usize) -> Entries {
        if !validate_read(stream, limit)? {
            return Ok(Vec::new());
        }
        self.with_streams(|streams| {
            let Some(state) = streams.get(stream) else {
                return Vec::new();
            };
            let skip = state.entries.len().saturating_sub(limit);
            state.entries.iter().skip(skip).cloned().collect()
        })
    }

    async fn ping(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}
