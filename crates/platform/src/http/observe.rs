//! The observation layer: the request span, the HTTP metrics and the final problem rendering in
//! one hand-written service, because each `from_fn` middleware boxes a clone of the whole inner
//! stack per request and this is the hot path of every service.
//!
//! Per request: one boxed future, one clone of the inner service, cached metric handles, and
//! lock-free counting into the SLO error budgets (`GET /slo`).

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::response::Response;
use futures::future::BoxFuture;
use tower::{Layer, Service};
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::http::REQUEST_ID;
use crate::metrics::HttpMetrics;
use crate::slo::budget::{Budgets, UNMATCHED_ROUTE};

/// Wraps a service in [`Observe`].
#[derive(Clone)]
pub(crate) struct ObserveLayer {
    metrics: HttpMetrics,
    budgets: Budgets,
}

impl ObserveLayer {
    pub(crate) fn new(metrics: HttpMetrics, budgets: Budgets) -> ObserveLayer {
        ObserveLayer { metrics, budgets }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            metrics: self.metrics.clone(),
            budgets: self.budgets.clone(),
        }
    }
}

/// Opens the request span, counts the request in flight, records its duration by route, method
/// and status, counts it against the SLO error budgets, logs it, and renders any error response
/// as a problem carrying the request id.
#[derive(Clone)]
pub(crate) struct Observe<S> {
    inner: S,
    metrics: HttpMetrics,
    budgets: Budgets,
}

impl<S, B> Service<Request> for Observe<S>
where
    S: Service<Request, Response = axum::http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone that was driven to readiness serves this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let route = request.extensions().get::<MatchedPath>().cloned();
        let request_id = request.headers().get(REQUEST_ID).cloned();
        let span = request_span(&request, route.as_ref(), request_id.as_ref());
        // Kept only to explain a bare 404 or 405; cloning a `Uri` shares its bytes.
        let (method, uri) = (request.method().clone(), request.uri().clone());
        // Cloning a `MatchedPath` shares its string; the budgets need it after `finish`.
        let slo_route = route.clone();
        let in_flight = self.metrics.start(route, &method);
        let budgets = self.budgets.clone();
        Box::pin(async move {
            // When the client goes away this future is dropped here: the request is counted as
            // aborted by `in_flight`'s drop and never reaches the budgets, neither good nor bad.
            let Ok(response) = inner.call(request).instrument(span.clone()).await;
            let response = response.map(axum::body::Body::new);
            let status = response.status();
            let latency = in_flight.finish(status);
            // Recorded before the response is returned, so a client that has its answer can
            // already read it at `/slo`.
            budgets.record_request(
                slo_route
                    .as_ref()
                    .map_or(UNMATCHED_ROUTE, MatchedPath::as_str),
                status.as_u16(),
                latency,
            );
            log_response(status, latency, &span);
            let request_id = request_id.as_ref().and_then(|value| value.to_str().ok());
            Ok(crate::http::problem::finalize(
                response, request_id, &method, &uri,
            ))
        })
    }
}

fn request_span(
    request: &Request,
    route: Option<&MatchedPath>,
    request_id: Option<&HeaderValue>,
) -> Span {
    let span = tracing::info_span!(
        "HTTP request",
        method = %request.method(),
        route = route.map_or("unmatched", MatchedPath::as_str),
        request_id = request_id.and_then(|v| v.to_str().ok()).unwrap_or_default(),
        status = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
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

fn log_response(status: axum::http::StatusCode, latency: Duration, span: &Span) {
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
