//! The Prometheus recorder, the canonical metric names, and the HTTP metrics middleware.
//!
//! Histograms are exported with explicit buckets (never summaries), and every bucket list
//! includes each SLO latency threshold, so an SLO on "faster than 100 ms" reads a bucket bound.
//! Label values come only from route templates, a closed method set and status codes.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use axum::extract::MatchedPath;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Canonical metric names, shared by the code that records and the code that generates rules.
pub mod names {
    /// Histogram of HTTP request durations, labelled `http_route`, `http_request_method`,
    /// `http_response_status_code`.
    pub const HTTP_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
    /// Gauge of HTTP requests in flight.
    pub const HTTP_ACTIVE_REQUESTS: &str = "http_server_active_requests";
    /// Counter of requests whose client went away before the answer, labelled like the histogram
    /// minus the status. Counted apart: neither good nor bad for an SLO.
    pub const HTTP_ABORTED_REQUESTS: &str = "http_server_aborted_requests_total";
    /// Gauge of open connections, labelled `listener` (`api`, `admin`).
    pub const HTTP_OPEN_CONNECTIONS: &str = "http_server_open_connections";
    /// Counter of connections closed at accept because the listener was at
    /// `server.max_connections`, labelled `listener`.
    pub const HTTP_REFUSED_CONNECTIONS: &str = "http_server_refused_connections_total";
    /// Counter of connections closed because no request head (TLS handshake included) arrived
    /// within `server.header_read_timeout` of their accept, labelled `listener`.
    pub const HTTP_HEADER_TIMEOUTS: &str = "http_server_header_timeouts_total";
    /// Histogram of storage operations: OpenTelemetry's database client convention
    /// (`db.client.operation.duration`), labelled `db_system_name` (`postgresql`, `sqlite`,
    /// `aws.dynamodb`, …), `db_operation_name` (`get`, `append`, …) and `outcome` (`ok`,
    /// `not_found`, `error`). Until this rename it was `storage_operation_duration_seconds`
    /// with `backend` and `operation`.
    pub const DB_CLIENT_OPERATION_DURATION: &str = "db_client_operation_duration_seconds";
    /// Gauge fixed at 1, labelled `version` and `revision`.
    pub const BUILD_INFO: &str = "build_info";
    /// Gauge per dependency check (`check`): 1 when its last run passed, 0 when it failed.
    pub const HEALTH_CHECK_STATUS: &str = "health_check_status";
}

/// Bucket bounds in seconds. They include every SLO latency threshold (50 ms, 100 ms, 200 ms).
pub const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle; later calls return the same
/// handle, so several apps in one test process share one registry.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
                .map(|builder| builder.build_recorder());
            match recorder {
                Ok(recorder) => {
                    let handle = recorder.handle();
                    // Fails only if another recorder is already installed; ours then stays unused
                    // and the handle renders nothing, which tests would notice.
                    if metrics::set_global_recorder(recorder).is_err() {
                        tracing::warn!(
                            "A metrics recorder was already installed; /metrics will be empty."
                        );
                    }
                    describe();
                    handle
                }
                // Only an empty bucket list fails, and BUCKETS is not empty.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

fn describe() {
    metrics::describe_histogram!(
        names::HTTP_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Duration of HTTP server requests."
    );
    metrics::describe_gauge!(
        names::HTTP_ACTIVE_REQUESTS,
        "HTTP server requests in flight."
    );
    metrics::describe_counter!(
        names::HTTP_ABORTED_REQUESTS,
        "HTTP requests whose client disconnected before the response."
    );
    metrics::describe_gauge!(
        names::HTTP_OPEN_CONNECTIONS,
        "Open connections of a listener."
    );
    metrics::describe_counter!(
        names::HTTP_REFUSED_CONNECTIONS,
        "Connections closed at accept because the listener was at server.max_connections."
    );
    metrics::describe_counter!(
        names::HTTP_HEADER_TIMEOUTS,
        "Connections closed because a request head did not arrive within server.header_read_timeout."
    );
    metrics::describe_histogram!(
        names::DB_CLIENT_OPERATION_DURATION,
        metrics::Unit::Seconds,
        "Duration of database client operations by system, operation and outcome."
    );
    metrics::describe_gauge!(names::BUILD_INFO, "Build information; always 1.");
    metrics::describe_gauge!(
        names::HEALTH_CHECK_STATUS,
        "Whether a dependency check's last run passed (1) or failed (0), by check."
    );
    metrics_process::Collector::default().describe();
}

/// Sets `build_info{version, revision} 1`.
pub fn record_build_info(version: &'static str, revision: &'static str) {
    metrics::gauge!(names::BUILD_INFO, "version" => version, "revision" => revision).set(1.0);
}

/// The Prometheus text exposition, with process metrics collected at scrape time.
pub fn render(handle: &PrometheusHandle) -> String {
    metrics_process::Collector::default().collect();
    handle.render()
}

/// The methods that keep their own label value; any other becomes `_OTHER`, so a client cannot
/// grow the label set.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

/// The HTTP server metrics with their handles cached: a request records into a histogram found
/// by route, method and status under a read lock, without building label sets or allocating.
///
/// The label set is bounded: routes are the router's templates (or `unmatched`), methods a
/// closed set, statuses at most a few dozen.
#[derive(Clone)]
pub(crate) struct HttpMetrics {
    active: metrics::Gauge,
    durations: Arc<RwLock<DurationHandles>>,
}

/// Route template → (method, status) → histogram.
type DurationHandles =
    HashMap<String, HashMap<(&'static str, u16), metrics::Histogram, LabelHashing>, LabelHashing>;

/// FNV-1a, for maps keyed by label values. Their keys are route templates, methods, statuses
/// and operation names: a bounded set the code chose, never a client's bytes, so the flooding
/// resistance of std's SipHash buys nothing there, and it was a third of each lookup.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LabelHasher(u64);

impl Default for LabelHasher {
    fn default() -> Self {
        LabelHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for LabelHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Builds [`LabelHasher`]s.
pub(crate) type LabelHashing = std::hash::BuildHasherDefault<LabelHasher>;

impl HttpMetrics {
    /// Handles from the installed recorder; call after [`install`].
    pub(crate) fn new() -> HttpMetrics {
        HttpMetrics {
            active: metrics::gauge!(names::HTTP_ACTIVE_REQUESTS),
            durations: Arc::new(RwLock::new(HashMap::default())),
        }
    }

    /// Counts a request in flight until [`InFlight::finish`], or until dropped (client gone).
    /// `start` is when the request arrived (the caller has read the clock already).
    pub(crate) fn start(
        &self,
        route: Option<MatchedPath>,
        method: &axum::http::Method,
        start: Instant,
    ) -> InFlight {
        self.active.increment(1.0);
        InFlight {
            metrics: self.clone(),
            start,
            route,
            method: method_label(method),
            finished: false,
        }
    }

    /// Records `seconds` into the histogram of route, method and status, made the first time
    /// that combination is seen. The common case is a read lock and two lookups.
    fn record_duration(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        let recorded = self.durations.read().ok().is_some_and(|handles| {
            handles
                .get(route)
                .and_then(|by_status| by_status.get(&(method, status)))
                .map(|histogram| histogram.record(seconds))
                .is_some()
        });
        if recorded {
            return;
        }
        let histogram = metrics::histogram!(
            names::HTTP_REQUEST_DURATION,
            "http_route" => route.to_owned(),
            "http_request_method" => method,
            "http_response_status_code" => status.to_string(),
        );
        histogram.record(seconds);
        if let Ok(mut handles) = self.durations.write() {
            handles
                .entry(route.to_owned())
                .or_default()
                .insert((method, status), histogram);
        }
    }
}

/// One request in flight; records its duration on [`InFlight::finish`] and counts an abort when
/// dropped before that.
pub(crate) struct InFlight {
    metrics: HttpMetrics,
    start: Instant,
    route: Option<MatchedPath>,
    method: &'static str,
    finished: bool,
}

impl InFlight {
    /// The route template, `None` when no route matched.
    pub(crate) fn route(&self) -> Option<&MatchedPath> {
        self.route.as_ref()
    }

    fn route_label(&self) -> &str {
        self.route.as_ref().map_or("unmatched", MatchedPath::as_str)
    }

    /// Records the request's duration under its status and returns it, so the log line and the
    /// SLO budgets use the same measurement instead of reading the clock again. The request
    /// stops counting as in flight when `self` is dropped.
    pub(crate) fn finish(&mut self, status: axum::http::StatusCode) -> std::time::Duration {
        self.finished = true;
        let latency = self.start.elapsed();
        self.metrics.record_duration(
            self.route_label(),
            self.method,
            status.as_u16(),
            latency.as_secs_f64(),
        );
        latency
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.finished {
            metrics::counter!(
                names::HTTP_ABORTED_REQUESTS,
                "http_route" => self.route_label().to_owned(),
                "http_request_method" => self.method,
            )
            .increment(1);
        }
        self.metrics.active.decrement(1.0);
    }
}
