//! chat's metrics: names, descriptions, and the few places that record them. No other module
//! touches the recorder.
//!
//! - `chat_connections` (gauge): WebSocket connections open on this replica.
//! - `chat_rooms` (gauge): rooms with at least one member on this replica.
//! - `chat_messages_total{outcome}` (counter): messages sent by clients, `accepted` (stored and
//!   published), `rejected` (the client's fault: too large, rate limited, empty, not joined) or
//!   `failed` (ours: the log or the broker failed).
//! - `chat_delivery_seconds` (histogram) and `chat_deliveries_total{latency}` (counter,
//!   `within_100ms` / `over_100ms`): from acceptance to the message being queued for this
//!   replica's members, once per message and replica.
//! - `chat_send_queue_drops_total` (counter): members disconnected because their send queue was
//!   full (they resume on reconnect).

/// WebSocket connections open.
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

/// The delivery latency objective's threshold, which the `latency` label of
/// [`DELIVERIES_TOTAL`] names (`within_100ms` / `over_100ms`).
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

/// A WebSocket connection opened.
pub fn connection_opened() {
    metrics::gauge!(CONNECTIONS).increment(1.0);
}

/// A WebSocket connection closed.
pub fn connection_closed() {
    metrics::gauge!(CONNECTIONS).decrement(1.0);
}

/// A client's message was refused for the client's own fault, which the SLO does not count.
pub fn message_rejected() {
    metrics::counter!(MESSAGES_TOTAL, "outcome" => "rejected").increment(1);
}

/// This replica now has `rooms` rooms with local members.
pub fn rooms_open(rooms: usize) {
    metrics::gauge!(ROOMS).set(rooms as f64);
}

/// The series the rooms record per message, made once: recording then costs an atomic add,
/// not a registry lookup.
pub struct Instruments {
    accepted: metrics::Counter,
    failed: metrics::Counter,
    delivery_seconds: metrics::Histogram,
    on_time: metrics::Counter,
    late: metrics::Counter,
    queue_drops: metrics::Counter,
}

impl Instruments {
    /// Handles on the series of the installed recorder.
    pub fn new() -> Instruments {
        Instruments {
            accepted: metrics::counter!(MESSAGES_TOTAL, "outcome" => "accepted"),
            failed: metrics::counter!(MESSAGES_TOTAL, "outcome" => "failed"),
            delivery_seconds: metrics::histogram!(DELIVERY_SECONDS),
            on_time: metrics::counter!(DELIVERIES_TOTAL, "latency" => "within_100ms"),
            late: metrics::counter!(DELIVERIES_TOTAL, "latency" => "over_100ms"),
            queue_drops: metrics::counter!(SEND_QUEUE_DROPS_TOTAL),
        }
    }

    /// `count` messages were stored and published.
    pub fn accepted(&self, count: u64) {
        self.accepted.increment(count);
    }

    /// `count` messages could not be stored or published.
    pub fn failed(&self, count: u64) {
        self.failed.increment(count);
    }

    /// A message was fanned out `latency_ms` after its acceptance; returns whether that was
    /// over [`DELIVERY_THRESHOLD_MS`].
    pub fn delivered(&self, latency_ms: u64) -> bool {
        self.delivery_seconds.record(latency_ms as f64 / 1000.0);
        let late = latency_ms > DELIVERY_THRESHOLD_MS;
        if late {
            self.late.increment(1);
        } else {
            self.on_time.increment(1);
        }
        late
    }

    /// A member was dropped for a full send queue.
    pub fn queue_dropped(&self) {
        self.queue_drops.increment(1);
    }
}

impl Default for Instruments {
    fn default() -> Instruments {
        Instruments::new()
    }
}
