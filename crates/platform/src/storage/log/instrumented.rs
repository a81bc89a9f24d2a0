//! The wrapper every log backend runs inside: a timeout on each operation and the histogram
//! `db_client_operation_duration_seconds` with `db_operation_name` one of `append`, `read_after`,
//! `read_last`, `ping` and `outcome` `ok` or `error` (the timing itself is the key–value
//! wrapper's `Meter`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Entries, Log};
use crate::storage::StorageError;
use crate::storage::instrumented::{Meter, ok};

const OPERATIONS: [&str; 4] = ["append", "read_after", "read_last", "ping"];
const OUTCOMES: [&str; 2] = ["ok", "error"];

/// A [`Log`] that times, bounds and counts every call to the one it wraps.
#[derive(Debug)]
pub struct InstrumentedLog {
    inner: Arc<dyn Log>,
    meter: Meter,
}

impl InstrumentedLog {
    /// Wraps `inner`; with a `timeout`, an operation that takes longer is abandoned and reported
    /// as [`StorageError::Unavailable`]. `None` is for the in-process memory log.
    pub fn new(inner: Arc<dyn Log>, timeout: Option<Duration>) -> InstrumentedLog {
        let meter = Meter::new(inner.backend(), timeout, &OPERATIONS, &OUTCOMES);
        InstrumentedLog { inner, meter }
    }
}

#[async_trait]
impl Log for InstrumentedLog {
    async fn append(&self, stream: &str, entries: &[Vec<u8>]) -> Result<u64, StorageError> {
        self.meter
            .observe("append", self.inner.append(stream, entries), ok)
            .await
    }

    async fn read_after(&self, stream: &str, after: u64, limit: usize) -> Entries {
        self.meter
            .observe(
                "read_after",
                self.inner.read_after(stream, after, limit),
                ok,
            )
            .await
    }

    async fn read_last(&self, stream: &str, limit: usize) -> Entries {
        self.meter
            .observe("read_last", self.inner.read_last(stream, limit), ok)
            .await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.meter.observe("ping", self.inner.ping(), ok).await
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}
