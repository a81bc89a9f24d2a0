//! chat's own settings: the `[chat]` section (limits of rooms and connections), with its
//! defaults. The platform deserialises it from the same configuration as its own sections.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// chat's own section, `[chat]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ChatSettings {
    /// `[chat]`.
    #[serde(default)]
    pub chat: RoomSettings,
}

/// `[chat]`: limits of rooms and connections.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomSettings {
    /// Longest message text in bytes; longer ones get an error frame. Default 4096.
    pub max_message_bytes: usize,
    /// Longest frame in bytes; a longer one closes the connection with 1009. Default 65536.
    pub max_frame_bytes: usize,
    /// Messages each room keeps and sends on join. Default 100.
    pub history: usize,
    /// Frames queued for one connection; a client that lets it fill is disconnected (4000) and
    /// resumes on reconnect. Default 1024.
    pub send_queue: usize,
    /// Messages one connection may send per second on average. Default 5.
    pub rate_per_second: f64,
    /// …and at once. Default 10.
    pub rate_burst: u32,
    /// Ping interval; a connection silent for two intervals is closed (4001). Default `20s`.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Time to send the join frame after connecting. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub join_timeout: Duration,
    /// When a room gets its first member on this replica, how long the join waits for the
    /// replicas that have the room open already to say who is in it, so that a name is made
    /// unique against theirs too. The first answer ends the wait; only a room no replica has
    /// open waits all of it. `0s` does not wait. Unused with a `memory:` broker (one replica).
    /// Default `250ms`.
    #[serde(with = "humantime_serde")]
    pub presence_wait: Duration,
}

impl Default for RoomSettings {
    fn default() -> Self {
        RoomSettings {
            max_message_bytes: 4096,
            max_frame_bytes: 65_536,
            history: 100,
            send_queue: 1024,
            rate_per_second: 5.0,
            rate_burst: 10,
            heartbeat: Duration::from_secs(20),
            join_timeout: Duration::from_secs(10),
            presence_wait: Duration::from_millis(250),
        }
    }
}
