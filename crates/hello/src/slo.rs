//! hello's service level objectives.

use platform::slo::Slo;

/// Availability 99.9% and latency 99% under 100 ms, both over 30 days.
pub fn slos() -> Vec<Slo> {
    Slo::http_pair(0.1)
}
