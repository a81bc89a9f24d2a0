//! notes' service level objectives.

use platform::slo::{Sli, Slo};

/// Availability 99.9% and latency 99% under 200 ms, both over 30 days.
pub fn slos() -> Vec<Slo> {
    vec![
        Slo::new(
            "availability",
            "Requests answered without a server error (not 5xx).",
            0.999,
            Sli::availability(),
        ),
        Slo::new(
            "latency",
            "Requests answered within 200 ms.",
            0.99,
            Sli::latency(0.2),
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
