//! The HTTP stack every service runs, in one function, in this order:
//!
//! request id → sensitive headers → observe (trace span, metrics, SLO budgets) → body limit →
//! concurrency limit with load shedding → catch panic → timeout → routes; on the way out,
//! problem rendering with the request id, security headers and the echoed `x-request-id`.
//!
//! All of it is one hand-written service (`layer.rs`), applied with `Router::layer`, so it runs
//! after routing and sees the matched route template; the 404 fallback is set first so it runs
//! through the stack too.

pub mod client_ip;
pub mod json;
mod layer;
mod observe;
pub mod openapi;
pub mod path;
pub mod problem;
pub mod query;
pub mod ratelimit;
mod request_id;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

use crate::config::ServerSettings;
use crate::health::Health;
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
    // The layer is one value shared by every route's copy (`Router::layer` clones it per
    // route), so the concurrency limit is one allowance for the whole router.
    let platform = layer::PlatformLayer::new(
        crate::metrics::HttpMetrics::new(),
        budgets,
        layer::Limits {
            timeout: settings.request_timeout,
            body_limit,
            max_in_flight: settings.max_concurrency,
        },
    );
    let routes = routes
        .route("/livez", get(crate::health::livez))
        .route(
            "/readyz",
            get(move || crate::health::readyz_public(health.clone())),
        )
        .fallback(problem::not_found);
    // The extractors' own cap (axum's 2 MiB) must not undercut a larger `server.body_limit`;
    // below it, the platform layer's limit binds first and the extractors need not be told.
    let routes = if body_limit > AXUM_DEFAULT_BODY_LIMIT {
        routes.layer(DefaultBodyLimit::max(body_limit))
    } else {
        routes
    };
    routes.layer(platform)
}

/// The body limit axum's extractors apply when no `DefaultBodyLimit` says otherwise.
const AXUM_DEFAULT_BODY_LIMIT: usize = 2 * 1024 * 1024;
