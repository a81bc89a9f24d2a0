//! The PromQL selectors of an SLO's events, the one definition that the rules, the dashboard
//! and OpenSLO all read, so "bad" means the same in an alert as on a panel.
//!
//! Series are selected by `job="<service>"`: the scrape job is named after the service, since
//! the service's own metrics carry no service label.

use crate::metrics::names;
use crate::slo::{PROBE_ROUTES, Routes, Sli, Slo};

/// A PromQL (and JSON, and YAML) double-quoted string literal: the escapes coincide.
pub(crate) fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// `job="<service>"`.
pub(crate) fn job(service: &str) -> String {
    format!("job={}", quoted(service))
}

/// A regular expression matching exactly one of `values`, metacharacters escaped.
fn alternatives(values: &[&str]) -> String {
    values
        .iter()
        .map(|value| {
            value.chars().fold(String::new(), |mut escaped, c| {
                if "\\.+*?()|[]{}^$".contains(c) {
                    escaped.push('\\');
                }
                escaped.push(c);
                escaped
            })
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// The `http_route` matcher of `routes`.
fn route_matcher(routes: &Routes) -> String {
    match routes {
        Routes::AllButProbes => format!("http_route!~{}", quoted(&alternatives(PROBE_ROUTES))),
        Routes::Only(only) => format!("http_route=~{}", quoted(&alternatives(only))),
    }
}

/// `selector` with `job="<service>"` added to its matchers.
pub(crate) fn with_job(selector: &str, service: &str) -> String {
    match selector.split_once('{') {
        Some((name, rest)) if rest.trim_start().starts_with('}') => {
            format!("{name}{{{}{rest}", job(service))
        }
        Some((name, rest)) => format!("{name}{{{},{rest}", job(service)),
        None => format!("{selector}{{{}}}", job(service)),
    }
}

/// The counters an SLO's events are read from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Events {
    /// Bad events and all events are counters.
    Bad {
        /// Selector of the bad events' counter.
        bad: String,
        /// Selector of all events' counter.
        total: String,
    },
    /// Good events and all events are counters (a latency histogram's bucket and count).
    Good {
        /// Selector of the good events' counter.
        good: String,
        /// Selector of all events' counter.
        total: String,
    },
}

impl Events {
    /// The selectors of `slo`'s events in `service`'s series.
    pub(crate) fn of(service: &str, slo: &Slo) -> Events {
        let duration = names::HTTP_REQUEST_DURATION;
        match &slo.sli {
            Sli::Availability { routes } => {
                let matchers = format!("{},{}", job(service), route_matcher(routes));
                Events::Bad {
                    bad: format!(
                        "{duration}_count{{{matchers},http_response_status_code=~\"5..\"}}"
                    ),
                    total: format!("{duration}_count{{{matchers}}}"),
                }
            }
            Sli::Latency {
                threshold_seconds,
                routes,
            } => {
                let matchers = format!("{},{}", job(service), route_matcher(routes));
                // The exporter writes bucket bounds with `f64`'s `Display`, so `le="0.1"`.
                Events::Good {
                    good: format!(
                        "{duration}_bucket{{{matchers},le={}}}",
                        quoted(&threshold_seconds.to_string())
                    ),
                    total: format!("{duration}_count{{{matchers}}}"),
                }
            }
            Sli::Ratio { bad, total } => Events::Bad {
                bad: with_job(bad, service),
                total: with_job(total, service),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_is_added_to_any_selector() {
        assert_eq!(with_job("a_total", "chat"), "a_total{job=\"chat\"}");
        assert_eq!(with_job("a_total{}", "chat"), "a_total{job=\"chat\"}");
        assert_eq!(
            with_job("a_total{outcome=\"failed\"}", "chat"),
            "a_total{job=\"chat\",outcome=\"failed\"}"
        );
    }

    #[test]
    fn route_templates_are_matched_literally() {
        assert_eq!(
            route_matcher(&Routes::Only(&["/hello/{username}", "/a.b"])),
            r#"http_route=~"/hello/\\{username\\}|/a\\.b""#
        );
        assert_eq!(
            route_matcher(&Routes::AllButProbes),
            r#"http_route!~"/livez|/readyz""#
        );
    }
}
