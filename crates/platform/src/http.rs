//! The HTTP stack every service runs, in one function, outermost layer first:
//!
//! request id → observe (trace span, metrics, problem rendering) → catch panic → timeout → body
//! limit → concurrency limit with load shedding → security headers → routes.
//!
//! The stack is applied with `Router::layer`, so it runs after routing and every layer sees the
//! matched route template; the 404 fallback is set first so it runs through the stack too.

pub mod client_ip;
pub mod json;
mod observe;
pub mod openapi;
pub mod path;
pub mod problem;
pub mod query;
pub mod ratelimit;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Response, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::ServerSettings;
use crate::health::Health;
use crate::http::problem::Problem;
use crate::slo::budget::Budgets;

/// The request id header, generated when the client sent none, and echoed back.
pub const REQUEST_ID: &str = "x-request-id";

/// Wraps a service's routes in the platform stack, adding `/livez`, `/readyz` (status only)
/// and the 404 problem fallback. Every finished request is counted into `budgets` (what the
/// admin port's `GET /slo` reports).
///
/// ```
/// use axum::{Router, routing::get};
/// let settings = platform::config::ServerSettings::default();
/// let app: Router = platform::http::stack(
///     Router::new().route("/hello", get(|| async { "hi" })),
///     &settings,
///     platform::health::Health::default(),
///     platform::slo::budget::Budgets::new(&[]),
/// );
/// ```
pub fn stack(
    routes: Router,
    settings: &ServerSettings,
    health: Health,
    budgets: Budgets,
) -> Router {
    let body_limit = usize::try_from(settings.body_limit.as_u64()).unwrap_or(usize::MAX);
    // One semaphore for the whole router: `Router::layer` clones the layer per route, and a
    // per-route limit would multiply the allowance.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(settings.max_concurrency));
    let request_timeout = settings.request_timeout;
    routes
        .route("/livez", get(crate::health::livez))
        .route(
            "/readyz",
            get(move || crate::health::readyz_public(health.clone())),
        )
        .fallback(problem::not_found)
        .layer(
            ServiceBuilder::new()
                // Request id first, so every later layer, log line and problem carries it.
                .layer(SetRequestIdLayer::new(
                    HeaderName::from_static(REQUEST_ID),
                    MakeRequestUuid,
                ))
                .layer(PropagateRequestIdLayer::new(HeaderName::from_static(
                    REQUEST_ID,
                )))
                // Credentials never reach a log line, whatever a later layer prints.
                .layer(SetSensitiveRequestHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::COOKIE,
                    header::PROXY_AUTHORIZATION,
                ]))
                // Trace span (continues `traceparent`), metrics by route template, and, inside the
                // request id, every error response below rendered as a problem carrying it.
                // Outside the panic and timeout layers, so those answers are counted too.
                .layer(observe::ObserveLayer::new(
                    crate::metrics::HttpMetrics::new(),
                    budgets,
                ))
                .layer(CatchPanicLayer::custom(panic_to_problem))
                // Timeout and load-shed errors become 503 problems here.
                .layer(HandleErrorLayer::new(move |error| {
                    middleware_error(error, request_timeout)
                }))
                .timeout(request_timeout)
                // Content-Length over the limit is refused before reading; streamed bodies are
                // cut at the limit and the JSON extractor answers 413.
                .layer(RequestBodyLimitLayer::new(body_limit))
                .layer(DefaultBodyLimit::max(body_limit))
                // Beyond `max_concurrency` requests in flight, shed at once instead of queueing.
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::with_semaphore(in_flight))
                .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
                .layer(security_header(header::REFERRER_POLICY, "no-referrer"))
                .layer(security_header(
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; frame-ancestors 'none'",
                )),
        )
}

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    // A route that sets its own value (an HTML page's CSP) keeps it.
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

fn panic_to_problem(panic: Box<dyn Any + Send + 'static>) -> Response<axum::body::Body> {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = message, "A handler panicked; answered 500.");
    Problem::internal().into_response()
}

async fn middleware_error(error: tower::BoxError, timeout: Duration) -> Problem {
    if error.is::<tower::timeout::error::Elapsed>() {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "Request timed out",
        )
        .with_detail(format!("The request did not complete within {timeout:?}."))
        .with_retry_after(1)
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "Server overloaded",
        )
        .with_detail("Too many requests are in flight; retry shortly.")
        .with_retry_after(1)
    } else {
        tracing::error!(error = %error, "A middleware failed.");
        Problem::internal()
    }
}
