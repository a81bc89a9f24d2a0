//! chat's service level objectives, which make the original's computable.

use platform::slo::dashboard::ServiceMetric;
use platform::slo::{Routes, Sli, Slo};

use crate::metrics::{CONNECTIONS, SEND_QUEUE_DROPS_TOTAL};

/// The SLO of messages stored and published; its ratio SLI is recorded by the rooms' ingest
/// (`hub/ingest.rs`), not derived from HTTP metrics.
pub const DELIVERED_SLO: &str = "delivered";
/// The SLO of messages fanned out within `metrics::DELIVERY_THRESHOLD_MS`; its ratio SLI is
/// recorded by the room at fan-out (`hub/room.rs`).
pub const DELIVERY_LATENCY_SLO: &str = "delivery_latency";

/// chat's own panels on its dashboard: the load it carries, and the clients it drops for being
/// too slow to read (by design, but a rising rate with idle CPU points at clients' networks).
pub const DASHBOARD_METRICS: &[ServiceMetric] = &[
    ServiceMetric::Gauge {
        metric: CONNECTIONS,
        title: "Open WebSocket connections",
        description: "WebSocket sessions open now, summed over the replicas of each namespace.",
        unit: "none",
    },
    ServiceMetric::Counter {
        metric: SEND_QUEUE_DROPS_TOTAL,
        title: "Members dropped for a full send queue",
        description: "Members disconnected per second because their send queue was full: \
                      clients too slow to read what their room says.",
    },
];

/// Pages 99.9% available; 99.9% of accepted messages delivered (stored and published); 99% of
/// them fanned out within 100 ms of acceptance. All over 30 days.
pub fn slos() -> Vec<Slo> {
    vec![
        Slo::new(
            "availability",
            "Chat pages answered without a server error (not 5xx).",
            0.999,
            Sli::Availability {
                routes: Routes::Only(&["/", "/rooms", "/rooms/{room}"]),
            },
        ),
        Slo::new(
            DELIVERED_SLO,
            "Messages clients sent that were stored and published (not failed).",
            0.999,
            Sli::Ratio {
                bad: "chat_messages_total{outcome=\"failed\"}",
                total: "chat_messages_total{outcome=~\"accepted|failed\"}",
            },
        ),
        Slo::new(
            DELIVERY_LATENCY_SLO,
            "Messages fanned out to a replica's members within 100 ms of acceptance.",
            0.99,
            Sli::Ratio {
                bad: "chat_deliveries_total{latency=\"over_100ms\"}",
                total: "chat_deliveries_total",
            },
        ),
    ]
}
