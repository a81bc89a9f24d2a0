//! Service level objectives declared once, in code. Everything else is generated from the
//! declaration: Prometheus recording and burn-rate alert rules (`slo::rules`), the Grafana
//! dashboard (`slo::dashboard`), OpenSLO YAML (`slo::openslo`) and the live error budget at
//! `GET /slo` (`slo::budget`).
//!
//! ```
//! use platform::slo::{Slo, Sli};
//! let slos = [
//!     Slo::new("availability", "Requests answered without a server error (not 5xx).", 0.999, Sli::availability()),
//!     Slo::new("latency", "Requests answered within 100 ms.", 0.99, Sli::latency(0.1)),
//! ];
//! assert!((slos[1].error_budget() - 0.01).abs() < 1e-12);
//! // The same pair, as most HTTP services declare it:
//! assert_eq!(Slo::http_pair(0.1), slos);
//! ```

pub mod budget;
pub mod dashboard;
pub mod openslo;
pub(crate) mod promql;
pub mod rules;

use std::borrow::Cow;
use std::time::Duration;

use crate::metrics::BUCKETS;

/// Routes the platform serves for probes; request SLIs leave them out unless named.
pub const PROBE_ROUTES: &[&str] = &["/livez", "/readyz"];

/// One objective: `objective` of the events the SLI counts are good over `window`.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// Short name, `[a-z_]+`, unique within the service (`availability`, `latency`).
    pub name: &'static str,
    /// One sentence for humans: what "good" means.
    pub description: Cow<'static, str>,
    /// The target ratio of good events, e.g. `0.999`.
    pub objective: f64,
    /// The compliance window. Default 30 days.
    pub window: Duration,
    /// What is counted.
    pub sli: Sli,
}

/// What an SLO counts as good and as total.
#[derive(Debug, Clone, PartialEq)]
pub enum Sli {
    /// HTTP requests; bad = answered 5xx (timeouts, shed load, unavailable backends and bugs).
    /// 4xx, including 429, are good: the client's fault. Aborted requests are not counted.
    Availability {
        /// Which routes count.
        routes: Routes,
    },
    /// HTTP requests; good = answered within `threshold_seconds`, which must be a histogram
    /// bucket bound ([`BUCKETS`]) so Prometheus reads it exactly.
    Latency {
        /// The threshold in seconds.
        threshold_seconds: f64,
        /// Which routes count.
        routes: Routes,
    },
    /// A ratio of two service counters (chat's deliveries): bad = `bad`, total = `total`.
    Ratio {
        /// PromQL selector of the counter of bad events, e.g. `chat_messages_total{outcome="failed"}`.
        bad: &'static str,
        /// PromQL selector of the counter of all events, e.g. `chat_messages_total`.
        total: &'static str,
    },
}

/// Which `http_route` values an HTTP SLI counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routes {
    /// Every route except [`PROBE_ROUTES`] (unmatched 404s included: they are 4xx, so good).
    AllButProbes,
    /// Only these route templates.
    Only(&'static [&'static str]),
}

impl Sli {
    /// Availability over every route but the probes.
    pub fn availability() -> Sli {
        Sli::Availability {
            routes: Routes::AllButProbes,
        }
    }

    /// Latency under `threshold_seconds` over every route but the probes.
    pub fn latency(threshold_seconds: f64) -> Sli {
        Sli::Latency {
            threshold_seconds,
            routes: Routes::AllButProbes,
        }
    }
}

impl Slo {
    /// An SLO over the default 30-day window.
    pub fn new(
        name: &'static str,
        description: impl Into<Cow<'static, str>>,
        objective: f64,
        sli: Sli,
    ) -> Slo {
        Slo {
            name,
            description: description.into(),
            objective,
            window: Duration::from_secs(30 * 24 * 3600),
            sli,
        }
    }

    /// The two SLOs an HTTP service starts from, over every route but the probes and 30 days:
    /// `availability`, 99.9% of requests answered without a server error, and `latency`, 99%
    /// answered within `threshold_seconds` (a histogram bucket bound, as [`Sli::latency`]).
    ///
    /// ```
    /// let [availability, latency] = platform::slo::Slo::http_pair(0.05).try_into().unwrap();
    /// assert_eq!((availability.name, availability.objective), ("availability", 0.999));
    /// assert_eq!(latency.description, "Requests answered within 50 ms.");
    /// ```
    pub fn http_pair(threshold_seconds: f64) -> Vec<Slo> {
        let milliseconds = (threshold_seconds * 1000.0).round();
        vec![
            Slo::new(
                "availability",
                "Requests answered without a server error (not 5xx).",
                0.999,
                Sli::availability(),
            ),
            Slo::new(
                "latency",
                format!("Requests answered within {milliseconds} ms."),
                0.99,
                Sli::latency(threshold_seconds),
            ),
        ]
    }

    /// The allowed ratio of bad events, `1 - objective`.
    pub fn error_budget(&self) -> f64 {
        1.0 - self.objective
    }

    /// Checks the declaration: a sane objective and name, and a latency threshold that is a
    /// bucket bound. [`Service::with_slos`](crate::Service::with_slos) checks every SLO a
    /// service hands over, so no service needs its own test of it.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
        {
            return Err(format!("SLO name `{}` must be [a-z_]+", self.name));
        }
        if !(self.objective > 0.0 && self.objective < 1.0) {
            return Err(format!(
                "SLO `{}`: objective {} must be strictly between 0 and 1",
                self.name, self.objective
            ));
        }
        let threshold = match self.sli {
            Sli::Latency {
                threshold_seconds, ..
            } => Some(threshold_seconds),
            _ => None,
        };
        if let Some(threshold) = threshold
            && !BUCKETS
                .iter()
                .any(|bound| (bound - threshold).abs() < 1e-12)
        {
            return Err(format!(
                "SLO `{}`: latency threshold {threshold}s is not a histogram bucket bound ({BUCKETS:?})",
                self.name
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_thresholds_must_be_bucket_bounds() {
        assert!(
            Slo::new("latency", "", 0.99, Sli::latency(0.1))
                .validate()
                .is_ok()
        );
        let error = Slo::new("latency", "", 0.99, Sli::latency(0.12))
            .validate()
            .unwrap_err();
        assert!(error.contains("bucket bound"), "{error}");
    }

    #[test]
    fn objectives_and_names_are_checked() {
        assert!(
            Slo::new("availability", "", 1.0, Sli::availability())
                .validate()
                .is_err()
        );
        assert!(
            Slo::new("availability", "", 0.0, Sli::availability())
                .validate()
                .is_err()
        );
        assert!(
            Slo::new("Avail-ability", "", 0.999, Sli::availability())
                .validate()
                .is_err()
        );
        assert!(
            (Slo::new("a", "", 0.999, Sli::availability()).error_budget() - 0.001).abs() < 1e-12
        );
    }
}
