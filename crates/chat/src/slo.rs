//! chat's service level objectives, which make the original's computable.

use platform::slo::{Routes, Sli, Slo};

use crate::telemetry::{DELIVERED_SLO, DELIVERY_LATENCY_SLO};

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

#[cfg(test)]
mod tests {
    #[test]
    fn every_slo_is_valid() {
        for slo in super::slos() {
            assert_eq!(slo.validate(), Ok(()), "{}", slo.name);
        }
    }
}
