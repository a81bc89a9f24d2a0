//! chat: an anonymous real-time chat over WebSockets, with rooms, history and resume, that
//! scales out across replicas through a broker.
//!
//! History lives in the platform's append-only log (`storage.url`), fan-out between replicas
//! goes through its publish/subscribe broker (`broker.url`); `hub` holds the rooms, `connection`
//! one WebSocket, `pages` the HTML, `protocol` the frames.

pub mod connection;
pub mod domain;
pub mod hub;
pub mod pacing;
pub mod pages;
pub mod protocol;
pub mod queue;
pub mod slo;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;
use axum::routing::get;
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

/// Bytes read from a WebSocket at a time (BENCHMARKS.md, idle connections).
const READ_BUFFER_BYTES: usize = 256;
/// Bytes of frames gathered before a write; the buffer keeps its largest size (up to this plus
/// one frame) for the connection's life, so it is kept small.
const WRITE_BUFFER_BYTES: usize = 4096;

#[derive(Clone)]
struct AppState {
    hub: hub::Hub,
    settings: Arc<ChatSettings>,
    sessions: platform::shutdown::Sessions,
}

/// The service.
pub fn service() -> platform::Service<ChatSettings> {
    platform::Service::new(
        "chat",
        env!("CARGO_PKG_VERSION"),
        8084,
        |context: platform::Context<ChatSettings>| async move {
            let settings = context.service_settings();
            let log = context.log("chat", settings.chat.history.max(1)).await?;
            let broker = context.pubsub("chat").await?;
            telemetry::describe();
            let hub = hub::Hub::new(log, broker, settings.clone(), context.budgets().clone());
            let state = AppState {
                hub,
                settings,
                sessions: context.sessions().clone(),
            };
            Ok(Router::new()
                .route("/", get(pages::lobby))
                .route("/rooms", get(pages::enter))
                .route("/rooms/{room}", get(pages::room))
                .route("/static/chat.js", get(pages::script))
                .route("/static/chat.css", get(pages::style))
                .route("/ws", get(websocket))
                .with_state(state))
        },
    )
    .with_slos(slo::slos())
    .with_dashboard_metrics(slo::DASHBOARD_METRICS)
}

async fn websocket(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    let chat = &state.settings.chat;
    // axum's defaults (128 KiB read buffer, 64 MiB messages, unbounded write buffer) would let
    // one connection hold megabytes. The read buffer is zero-filled on every read and so
    // resident: 1 KiB instead of 4 took an idle connection from 14.3 to 11.3 KiB, and clients
    // send small frames (a longer frame grows the buffer to its length anyway). Frames are
    // gathered up to WRITE_BUFFER_BYTES before a write (the connection flushes after each batch):
    // with 0, each frame was its own `send`, 70% of the server's CPU at 200,000 deliveries/s.
    let cap = chat.max_frame_bytes.saturating_mul(2);
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(1 << 20)
        .max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| {
            connection::run(socket, state.hub, state.settings, state.sessions)
        })
}
