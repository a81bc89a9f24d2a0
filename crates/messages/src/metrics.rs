//! messages' own metrics.

/// The counter of messages stored for the first time.
pub const STORED_TOTAL: &str = "messages_stored_total";

/// Describes the service's metrics, and exports the counter at zero before the first message,
/// so rules and dashboards see the series from the start.
pub fn describe() {
    ::metrics::describe_counter!(
        STORED_TOTAL,
        "Messages stored for the first time (a repeated POST does not count)."
    );
    ::metrics::counter!(STORED_TOTAL).increment(0);
}
