//! The wrapper every network broker runs inside: a timeout on each operation and the histogram
//! `db_client_operation_duration_seconds` with `db_operation_name` one of `publish`, `subscribe`, `ping`
//! and `outcome` `ok` or `error` (the timing itself is the key–value wrapper's `Meter`).
//!
//! Only the calls are bounded and timed; the messages a [`Subscription`] yields afterwards are
//! not, because their rate is the publishers', not the broker's.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{PubSub, Subscription};
use crate::storage::StorageError;
use crate::storage::instrumented::{Meter, ok};

const OPERATIONS: [&str; 3] = ["publish", "subscribe", "ping"];
const OUTCOMES: [&str; 2] = ["ok", "error"];

/// A [`PubSub`] that times, bounds and counts every call to the one it wraps.
#[derive(Debug)]
pub struct InstrumentedPubSub {
    inner: Arc<dyn PubSub>,
    meter: Meter,
}

impl InstrumentedPubSub {
    /// Wraps `inner`; with a `timeout`, a call that takes longer is abandoned and reported as
    /// [`StorageError::Unavailable`].
    pub fn new(inner: Arc<dyn PubSub>, timeout: Option<Duration>) -> InstrumentedPubSub {
        let meter = Meter::new(inner.backend(), timeout, &OPERATIONS, &OUTCOMES);
        InstrumentedPubSub { inner, meter }
    }
}

#[async_trait]
impl PubSub for InstrumentedPubSub {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), StorageError> {
        self.meter
            .observe("publish", self.inner.publish(topic, payload), ok)
            .await
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, StorageError> {
        self.meter
            .observe("subscribe", self.inner.subscribe(topic), ok)
            .await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.meter.observe("ping", self.inner.ping(), ok).await
    }

    fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}
