//! What the platform layer (`layer.rs`) observes of a request: its trace span, continuing the
//! caller's `traceparent`, and the line logged when it finishes.

use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The request span, with method, route, request id, and the trace id of a `traceparent`.
/// When no subscriber wants the span (INFO off for this module), `info_span!` returns a
/// disabled span before any field is formatted, and nothing below runs.
pub(crate) fn request_span(
    request: &Request,
    route: Option<&MatchedPath>,
    request_id: &HeaderValue,
) -> Span {
    let span = tracing::info_span!(
        "HTTP request",
        method = %request.method(),
        route = route.map_or("unmatched", MatchedPath::as_str),
        request_id = request_id.to_str().unwrap_or_default(),
        status = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let traceparent = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok());
    if let Some(trace_id) = traceparent.and_then(crate::telemetry::trace_id) {
        span.record("trace_id", trace_id);
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&HeaderExtractor(request.headers()))
        });
        let _ = span.set_parent(parent);
    }
    span
}

/// Records the status on the span and logs the request: `warn` for a 5xx, else `debug`.
pub(crate) fn log_response(status: axum::http::StatusCode, latency: Duration, span: &Span) {
    span.record("status", status.as_u16());
    let latency_ms = latency.as_secs_f64() * 1000.0;
    let _entered = span.enter();
    if status.is_server_error() {
        tracing::warn!(status = status.as_u16(), latency_ms, "Request failed.");
    } else {
        tracing::debug!(status = status.as_u16(), latency_ms, "Request finished.");
    }
}

/// Reads W3C trace context out of request headers.
struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(axum::http::HeaderName::as_str).collect()
    }
}
