//! What chat's handlers share, built once when the service starts.

use std::sync::Arc;

use crate::config::ChatSettings;
use crate::hub::registry::Hub;

/// The state every handler is given: the rooms, the settings, and the platform's registry of
/// upgraded connections that the drain tells to stop.
#[derive(Clone)]
pub struct AppState {
    /// Every room of this replica; it holds the log, the broker and the wall clock.
    pub hub: Hub,
    /// `[chat]`.
    pub settings: Arc<ChatSettings>,
    /// Each WebSocket registers here, so a shutdown closes it with 1001 and waits for it.
    pub sessions: platform::shutdown::Sessions,
}
