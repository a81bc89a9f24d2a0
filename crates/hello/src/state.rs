//! What every handler shares.

use std::sync::Arc;

use platform::clock::WallClock;
use platform::storage::KeyValue;

/// Built once in [`crate::service`].
#[derive(Clone)]
pub struct AppState {
    /// Birthdays, keyed by username, valued `YYYY-MM-DD`.
    pub store: Arc<dyn KeyValue>,
    /// "Today" (UTC) is read from it; tests pin it.
    pub clock: WallClock,
}
