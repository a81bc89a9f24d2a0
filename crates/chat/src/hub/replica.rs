//! This replica as its rooms see it: what every room task of the hub shares.

use std::sync::Arc;

use platform::clock::WallClock;
use platform::slo::budget::Budgets;
use platform::storage::log::Log;
use platform::storage::pubsub::PubSub;

use crate::config::ChatSettings;
use crate::metrics::Instruments;

/// What the ingest and room tasks of every room on this replica share, built once by
/// `Hub::new`.
pub(super) struct Replica {
    /// This replica's id in the presence, query and roster events the broker carries.
    pub(super) id: String,
    /// The broker reaches no other replica (`memory:`): a new room asks no one who is in it.
    pub(super) alone: bool,
    /// Every room's history; appending numbers the messages.
    pub(super) log: Arc<dyn Log>,
    /// Fan-out between replicas, one topic per room.
    pub(super) broker: Arc<dyn PubSub>,
    /// `[chat]`.
    pub(super) settings: Arc<ChatSettings>,
    /// Where chat records its own ratio SLIs (delivered, delivery latency).
    pub(super) budgets: Budgets,
    /// Handles made once: recording then costs an atomic add, not a registry lookup.
    pub(super) instruments: Instruments,
    /// Stamps accepted messages and times their fan-out.
    pub(super) clock: WallClock,
}
