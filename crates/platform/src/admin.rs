//! The admin listener, never routed publicly:
//!
//! - `GET /metrics`: Prometheus text exposition.
//! - `GET /livez`: 200 while the process serves.
//! - `GET /readyz`: 200 or 503 with every dependency check (`application/health+json`).
//! - `GET /info`: name, version, git revision and the backends in use.
//! - `GET /slo`: per SLO, this process's counts, SLI, error budget remaining and burn rate over
//!   each window (see [`crate::slo::budget`]).

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;

use crate::health::Health;
use crate::slo::budget::Budgets;

/// What `GET /info` answers.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    /// The service's name.
    pub name: &'static str,
    /// Its version.
    pub version: &'static str,
    /// The git revision it was built from.
    pub revision: &'static str,
    /// The storage backends it opened, e.g. `["sqlite"]`.
    pub backends: Vec<String>,
}

/// The admin router.
pub(crate) fn router(
    health: Health,
    prometheus: PrometheusHandle,
    info: Info,
    budgets: Budgets,
) -> Router {
    let info = Arc::new(info);
    let readyz_health = health.clone();
    Router::new()
        .route("/metrics", get(move || metrics(prometheus.clone())))
        .route("/livez", get(crate::health::livez))
        .route(
            "/readyz",
            get(move || crate::health::readyz_detailed(readyz_health.clone())),
        )
        .route(
            "/slo",
            get(move || async move { axum::Json(budgets.report()) }),
        )
        .route(
            "/info",
            get(move || async move { axum::Json(info.as_ref().clone()) }),
        )
        .fallback(crate::http::problem::not_found)
        .layer(axum::middleware::from_fn(crate::http::problem::render))
}

async fn metrics(prometheus: PrometheusHandle) -> Response {
    let body = crate::metrics::render(&prometheus);
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
