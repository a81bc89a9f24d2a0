//! The Prometheus recorder, the canonical metric names, and the HTTP metrics middleware.
//!
//! Histograms are exported with explicit buckets (never summaries), and every bucket list
//! includes each SLO latency threshold, so an SLO on "faster than 100 ms" reads a bucket bound.
//! Label values come only from route templates, a closed method set and status codes.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
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
    /// Histogram of storage operations, labelled `backend`, `operation`, `outcome`.
    pub const STORAGE_OPERATION_DURATION: &str = "storage_operation_duration_seconds";
    /// Gauge fixed at 1, labelled `version` and `revision`.
    pub const BUILD_INFO: &str = "build_info";
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
    metrics::describe_histogram!(
        names::STORAGE_OPERATION_DURATION,
        metrics::Unit::Seconds,
        "Duration of storage operations by backend, operation and outcome."
    );
    metrics::describe_gauge!(names::BUILD_INFO, "Build information; always 1.");
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

/// Middleware: records `http_server_request_duration_seconds` and `http_server_active_requests`.
///
/// Runs after routing (the stack is applied with `Router::layer`), so `MatchedPath` gives the
/// route template; requests no route matched are labelled `unmatched`.
pub async fn track(request: Request, next: Next) -> Response {
    let route: String = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = method_label(request.method());
    metrics::gauge!(names::HTTP_ACTIVE_REQUESTS).increment(1.0);
    let guard = InFlight {
        start: Instant::now(),
        route,
        method,
        finished: false,
    };
    let response = next.run(request).await;
    guard.finish(response.status());
    response
}

/// Counts a request in flight; on drop before `finish`, the client went away.
struct InFlight {
    start: Instant,
    route: String,
    method: &'static str,
    finished: bool,
}

impl InFlight {
    fn finish(mut self, status: axum::http::StatusCode) {
        self.finished = true;
        metrics::histogram!(
            names::HTTP_REQUEST_DURATION,
            "http_route" => self.route.clone(),
            "http_request_method" => self.method,
            "http_response_status_code" => status.as_u16().to_string(),
        )
        .record(self.start.elapsed().as_secs_f64());
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.finished {
            metrics::counter!(
                names::HTTP_ABORTED_REQUESTS,
                "http_route" => std::mem::take(&mut self.route),
                "http_request_method" => self.method,
            )
            .increment(1);
        }
        metrics::gauge!(names::HTTP_ACTIVE_REQUESTS).decrement(1.0);
    }
}
