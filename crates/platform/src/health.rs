//! Liveness and readiness.
//!
//! Components register checks in [`Health`]; [`Health::spawn_checks`] runs them in the background
//! on an interval with a timeout and caches the results, so probes never wait on a dependency and
//! never hammer it. A check turns `fail` only after [`FAILS_BEFORE_FAIL`] failures in a row (one
//! failure shows as `warn`), and `pass` again after one success.
//!
//! Invariant: once shutdown begins ([`Health::begin_shutdown`]) readiness fails and never passes
//! again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use serde::Serialize;
use time::OffsetDateTime;

/// Consecutive failures after which a check reports `fail` (before that, `warn`).
pub const FAILS_BEFORE_FAIL: u32 = 2;

/// The media type of health answers (IETF draft "Health Check Response Format for HTTP APIs").
pub const CONTENT_TYPE: &str = "application/health+json";

/// A dependency check: `Ok` when the dependency answers, `Err(reason)` when it does not.
pub type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The health registry and readiness latch of one process. Cheap to clone.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    checks: RwLock<Vec<Registered>>,
    shutting_down: AtomicBool,
}

struct Registered {
    name: String,
    component_type: &'static str,
    check: CheckFn,
    state: Arc<RwLock<CheckState>>,
}

#[derive(Debug, Clone)]
struct CheckState {
    consecutive_failures: u32,
    observed_ms: f64,
    time: OffsetDateTime,
    output: Option<String>,
}

/// `pass`, `warn` or `fail`, as the health draft spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Healthy.
    Pass,
    /// Healthy, but a check failed recently.
    Warn,
    /// Not ready: a check failed repeatedly, or shutdown began.
    Fail,
}

/// One check's entry in the detailed readiness answer.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// The kind of dependency, e.g. `datastore`.
    pub component_type: &'static str,
    /// This check's status.
    pub status: Status,
    /// How long the last check took.
    pub observed_value: f64,
    /// Always `ms`.
    pub observed_unit: &'static str,
    /// When the last check finished (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Why the last check failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The detailed readiness answer (admin port).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The worst status of all checks, or `fail` during shutdown.
    pub status: Status,
    /// Keyed `<name>:responseTime`.
    pub checks: std::collections::BTreeMap<String, Vec<CheckReport>>,
}

impl Health {
    /// Registers a check named `name` (e.g. `sqlite`) of `component_type` (e.g. `datastore`).
    /// It starts as `warn` until it first runs.
    pub fn register(&self, name: impl Into<String>, component_type: &'static str, check: CheckFn) {
        let registered = Registered {
            name: name.into(),
            component_type,
            check,
            state: Arc::new(RwLock::new(CheckState {
                consecutive_failures: 1,
                observed_ms: 0.0,
                time: OffsetDateTime::now_utc(),
                output: Some("not checked yet".to_owned()),
            })),
        };
        if let Ok(mut checks) = self.inner.checks.write() {
            checks.push(registered);
        }
    }

    /// Runs every check once now, then keeps running them every `interval` until shutdown
    /// begins. Each run is bounded by `timeout`.
    pub async fn spawn_checks(&self, interval: Duration, timeout: Duration) {
        let checks: Vec<(CheckFn, Arc<RwLock<CheckState>>)> = match self.inner.checks.read() {
            Ok(checks) => checks
                .iter()
                .map(|c| (c.check.clone(), c.state.clone()))
                .collect(),
            Err(_) => return,
        };
        for (check, state) in checks {
            run_check(&check, &state, timeout).await;
            let health = self.clone();
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker.tick().await;
                // Once shutdown begins readiness fails regardless, so checking stops.
                while !health.is_shutting_down() {
                    ticker.tick().await;
                    run_check(&check, &state, timeout).await;
                }
            });
        }
    }

    /// Fails readiness from now on. Called when SIGTERM or SIGINT arrives.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// The current readiness, from cached check results.
    pub fn report(&self) -> Report {
        let mut checks = std::collections::BTreeMap::new();
        let mut overall = Status::Pass;
        if let Ok(registered) = self.inner.checks.read() {
            for check in registered.iter() {
                let Ok(state) = check.state.read() else {
                    continue;
                };
                let status = match state.consecutive_failures {
                    0 => Status::Pass,
                    n if n < FAILS_BEFORE_FAIL => Status::Warn,
                    _ => Status::Fail,
                };
                overall = worst(overall, status);
                checks.insert(
                    format!("{}:responseTime", check.name),
                    vec![CheckReport {
                        component_type: check.component_type,
                        status,
                        observed_value: state.observed_ms,
                        observed_unit: "ms",
                        time: state.time,
                        output: state.output.clone(),
                    }],
                );
            }
        }
        if self.is_shutting_down() {
            overall = Status::Fail;
        }
        Report {
            status: overall,
            checks,
        }
    }
}

fn worst(a: Status, b: Status) -> Status {
    match (a, b) {
        (Status::Fail, _) | (_, Status::Fail) => Status::Fail,
        (Status::Warn, _) | (_, Status::Warn) => Status::Warn,
        _ => Status::Pass,
    }
}

async fn run_check(check: &CheckFn, state: &RwLock<CheckState>, timeout: Duration) {
    let start = Instant::now();
    let outcome = match tokio::time::timeout(timeout, check()).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    };
    let observed_ms = start.elapsed().as_secs_f64() * 1000.0;
    let Ok(mut state) = state.write() else { return };
    state.observed_ms = (observed_ms * 1000.0).round() / 1000.0;
    state.time = OffsetDateTime::now_utc();
    match outcome {
        Ok(()) => {
            state.consecutive_failures = 0;
            state.output = None;
        }
        Err(reason) => {
            if state.consecutive_failures == 0 {
                tracing::warn!(reason = %reason, "A dependency check failed.");
            }
            state.consecutive_failures = state.consecutive_failures.saturating_add(1);
            state.output = Some(reason);
        }
    }
}

fn health_json(status: StatusCode, body: &impl Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Serialize)]
struct StatusOnly {
    status: Status,
}

/// `GET /livez`: 200 `{"status":"pass"}` while the process serves. Checks no dependency.
pub async fn livez() -> Response {
    health_json(
        StatusCode::OK,
        &StatusOnly {
            status: Status::Pass,
        },
    )
}

/// `GET /readyz` on the API port: 200 or 503 with the status alone, so no detail leaks.
pub async fn readyz_public(health: Health) -> Response {
    let status = health.report().status;
    health_json(http_status(status), &StatusOnly { status })
}

/// `GET /readyz` on the admin port: 200 or 503 with every check.
pub async fn readyz_detailed(health: Health) -> Response {
    let report = health.report();
    health_json(http_status(report.status), &report)
}

fn http_status(status: Status) -> StatusCode {
    match status {
        Status::Pass | Status::Warn => StatusCode::OK,
        Status::Fail => StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    fn flaky(up: Arc<AtomicBool>) -> CheckFn {
        Arc::new(move || {
            let up = up.clone();
            Box::pin(async move {
                if up.load(Ordering::SeqCst) {
                    Ok(())
                } else {
                    Err("connection refused".to_owned())
                }
            })
        })
    }

    #[tokio::test]
    async fn a_check_fails_only_after_repeated_failures_and_passes_after_one_success() {
        let health = Health::default();
        let up = Arc::new(AtomicBool::new(true));
        health.register("db", "datastore", flaky(up.clone()));
        let (check, state) = {
            let checks = health.inner.checks.read().unwrap();
            (checks[0].check.clone(), checks[0].state.clone())
        };
        assert_eq!(
            health.report().status,
            Status::Warn,
            "unchecked starts as warn"
        );
        run_check(&check, &state, Duration::from_secs(1)).await;
        assert_eq!(health.report().status, Status::Pass);
        up.store(false, Ordering::SeqCst);
        run_check(&check, &state, Duration::from_secs(1)).await;
        assert_eq!(health.report().status, Status::Warn);
        run_check(&check, &state, Duration::from_secs(1)).await;
        let report = health.report();
        assert_eq!(report.status, Status::Fail);
        let entry = &report.checks["db:responseTime"][0];
        assert_eq!(entry.output.as_deref(), Some("connection refused"));
        up.store(true, Ordering::SeqCst);
        run_check(&check, &state, Duration::from_secs(1)).await;
        assert_eq!(health.report().status, Status::Pass);
    }

    #[tokio::test]
    async fn a_hanging_check_times_out_as_a_failure() {
        let health = Health::default();
        health.register(
            "slow",
            "datastore",
            Arc::new(|| Box::pin(futures::future::pending::<Result<(), String>>())),
        );
        let (check, state) = {
            let checks = health.inner.checks.read().unwrap();
            (checks[0].check.clone(), checks[0].state.clone())
        };
        run_check(&check, &state, Duration::from_millis(20)).await;
        let report = health.report();
        assert_eq!(report.status, Status::Fail);
        assert!(
            report.checks["slow:responseTime"][0]
                .output
                .as_deref()
                .unwrap()
                .contains("no answer")
        );
    }

    #[tokio::test]
    async fn shutdown_fails_readiness_for_good() {
        let health = Health::default();
        assert_eq!(health.report().status, Status::Pass);
        health.begin_shutdown();
        assert_eq!(health.report().status, Status::Fail);
        let response = readyz_public(health.clone()).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
    }
}
