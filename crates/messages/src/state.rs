//! What every handler shares.

use std::sync::Arc;

use platform::storage::KeyValue;

use crate::domain::FirstSeenClock;

/// Built once in [`crate::service`].
#[derive(Clone)]
pub struct AppState {
    /// Records keyed by digest, and the listing's entries (empty values) under
    /// [`LISTING_PREFIX`](crate::domain::LISTING_PREFIX).
    pub store: Arc<dyn KeyValue>,
    /// Longest message, in UTF-8 bytes.
    pub max_bytes: usize,
    /// Largest page of the listing.
    pub max_page: usize,
    /// Stamps new messages.
    pub clock: Arc<FirstSeenClock>,
}
