//! chat's metrics: names and the few places that record them.
//!
//! - `chat_connections` (gauge): WebSocket sessions open on this replica.
//! - `chat_rooms` (gauge): rooms with at least one member on this replica.
//! - `chat_messages_total{outcome}` (counter): messages sent by clients, `accepted` (stored and
//!   published), `rejected` (the client's fault: too large, rate limited, empty, not joined) or
//!   `failed` (ours: the log or the broker failed).
//! - `chat_delivery_seconds` (histogram) and `chat_deliveries_total{latency}` (counter,
//!   `within_100ms` / `over_100ms`): from acceptance to the message being queued for this
//!   replica's members, once per message and replica.
//! - `chat_send_queue_drops_total` (counter): members disconnected because their send queue was
//!   full (they resume on reconnect).

/// Sessions open.
pub const CONNECTIONS: &str = "chat_connections";
/// Rooms with local members.
pub const ROOMS: &str = "chat_rooms";
/// Client messages by outcome.
pub const MESSAGES_TOTAL: &str = "chat_messages_total";
/// Acceptance to fan-out.
pub const DELIVERY_SECONDS: &str = "chat_delivery_seconds";
/// Deliveries by whether they met the latency objective.
pub const DELIVERIES_TOTAL: &str = "chat_deliveries_total";
/// Slow consumers disconnected.
pub const SEND_QUEUE_DROPS_TOTAL: &str = "chat_send_queue_drops_total";

/// The SLO names whose ratio SLIs chat records itself (see `slo.rs`).
pub const DELIVERED_SLO: &str = "delivered";
/// See [`DELIVERED_SLO`].
pub const DELIVERY_LATENCY_SLO: &str = "delivery_latency";

/// The delivery latency objective's threshold.
pub const DELIVERY_THRESHOLD_MS: u64 = 100;

/// Registers every series at zero, so dashboards and absent-alerts see them from the start.
pub fn describe() {
    metrics::describe_gauge!(CONNECTIONS, "WebSocket sessions open on this replica.");
    metrics::describe_gauge!(ROOMS, "Rooms with at least one member on this replica.");
    metrics::describe_counter!(MESSAGES_TOTAL, "Messages sent by clients, by outcome.");
    metrics::describe_histogram!(
        DELIVERY_SECONDS,
        metrics::Unit::Seconds,
        "From acceptance to fan-out on this replica."
    );
    metrics::describe_counter!(DELIVERIES_TOTAL, "Messages fanned out, by latency class.");
    metrics::describe_counter!(
        SEND_QUEUE_DROPS_TOTAL,
        "Members disconnected for a full send queue."
    );
    for outcome in ["accepted", "rejected", "failed"] {
        metrics::counter!(MESSAGES_TOTAL, "outcome" => outcome).increment(0);
    }
    for latency in ["within_100ms", "over_100ms"] {
        metrics::counter!(DELIVERIES_TOTAL, "latency" => latency).increment(0);
    }
    metrics::counter!(SEND_QUEUE_DROPS_TOTAL).increment(0);
    metrics::gauge!(CONNECTIONS).set(0.0);
    metrics::gauge!(ROOMS).set(0.0);
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}
