//! messages's service level objectives.

use platform::slo::Slo;

/// Availability 99.9% and latency 99% under 50 ms, both over 30 days.
pub fn slos() -> Vec<Slo> {
    Slo::http_pair(0.05)
}
