//! Liveness and readiness.
//!
//! Components register checks in [`Health`]; [`Health::spawn_checks`] runs them in the background
//! on an interval with a timeout and caches the results, so probes never wait on a dependency and
//! never hammer it. A check turns `fail` only after [`FAILS_BEFORE_FAIL`] failures in a row (one
//! failure shows as `warn`), and `pass` again after one success. Each run also sets the gauge
//! `health_check_status{check}` (1 passing, 0 failing), which the generated alerts watch.
//!
//! Readiness means "this process can serve": the listeners are bound and migrations done (both
//! happen before the first probe can reach `/readyz`), and shutdown has not begun. A failing
//! dependency check makes readiness `warn`, with the check in the details, not `fail`: a shared
//! dependency's outage would otherwise take every replica out of the Service at once, clients
//! would get connection errors instead of the service's fast `503` problem, and the
//! request-based SLO would record nothing during the outage. A check registered with
//! [`Health::register_required`] opts in to failing readiness, for a dependency this replica
//! alone cannot serve without.
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
    /// Whether this check failing fails readiness ([`Health::register_required`]).
    required: bool,
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
    /// Serving, but a dependency check fails (or failed recently).
    Warn,
    /// Not ready: shutdown began, or a check registered as required failed repeatedly. For one
    /// check: it failed [`FAILS_BEFORE_FAIL`] times in a row.
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
    /// `fail` during shutdown or when a required check fails; otherwise `warn` when any check
    /// does not pass, and `pass` when all do.
    pub status: Status,
    /// Keyed `<name>:responseTime`.
    pub checks: std::collections::BTreeMap<String, Vec<CheckReport>>,
}

impl Health {
    /// Registers a check named `name` (e.g. `postgres`) of `component_type` (e.g. `datastore`).
    /// It starts as `warn` until it first runs. When it fails, readiness reports `warn` with
    /// the check's details and stays `200`: the process keeps serving, answering what needs the
    /// dependency with a `503` problem.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use platform::health::{Health, Status};
    ///
    /// let health = Health::default();
    /// health.register("postgres", "datastore", Arc::new(|| Box::pin(async { Ok(()) })));
    /// // Not run yet: the check warns, the process is still ready.
    /// assert_eq!(health.report().status, Status::Warn);
    /// ```
    pub fn register(&self, name: impl Into<String>, component_type: &'static str, check: CheckFn) {
        self.add(name.into(), component_type, check, false);
    }

    /// Registers a check that fails readiness once it fails [`FAILS_BEFORE_FAIL`] times in a
    /// row. Only for a dependency without which this replica alone cannot serve (a local disk,
    /// say), never for one that every replica shares: its outage would empty the Service.
    pub fn register_required(
        &self,
        name: impl Into<String>,
        component_type: &'static str,
        check: CheckFn,
    ) {
        self.add(name.into(), component_type, check, true);
    }

    fn add(&self, name: String, component_type: &'static str, check: CheckFn, required: bool) {
        let registered = Registered {
            name,
            component_type,
            required,
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
        let checks: Vec<(String, CheckFn, Arc<RwLock<CheckState>>)> = match self.inner.checks.read()
        {
            Ok(checks) => checks
                .iter()
                .map(|c| (c.name.clone(), c.check.clone(), c.state.clone()))
                .collect(),
            Err(_) => return,
        };
        for (name, check, state) in checks {
            let gauge =
                ::metrics::gauge!(crate::metrics::names::HEALTH_CHECK_STATUS, "check" => name);
            run_check(&check, &state, timeout, &gauge).await;
            let health = self.clone();
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker.tick().await;
                // Once shutdown begins readiness fails regardless, so checking stops.
                while !health.is_shutting_down() {
                    ticker.tick().await;
                    run_check(&check, &state, timeout, &gauge).await;
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
                // A dependency's failure is reported, not turned into unreadiness, unless the
                // check opted in.
                let effect = match status {
                    Status::Fail if !check.required => Status::Warn,
                    status => status,
                };
                overall = worst(overall, effect);
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

async fn run_check(
    check: &CheckFn,
    state: &RwLock<CheckState>,
    timeout: Duration,
    gauge: &::metrics::Gauge,
) {
    let start = Instant::now();
    let outcome = match tokio::time::timeout(timeout, check()).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    };
    let observed_ms = start.elapsed().as_secs_f64() * 1000.0;
    gauge.set(if outcome.is_ok() { 1.0 } else { 0.0 });
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

    /// Runs the `index`th registered check once, as the background task does.
    async fn run(health: &Health, index: usize, timeout: Duration) {
        let (check, state) = {
            let checks = health.inner.checks.read().unwrap();
            (checks[index].check.clone(), checks[index].state.clone())
        };
        run_check(&check, &state, timeout, &::metrics::Gauge::noop()).await;
    }

    fn check_status(health: &Health, name: &str) -> Status {
        health.report().checks[&format!("{name}:responseTime")][0].status
    }

    #[tokio::test]
    async fn a_check_fails_only_after_repeated_failures_and_passes_after_one_success() {
        let health = Health::default();
        let up = Arc::new(AtomicBool::new(true));
        health.register("db", "datastore", flaky(up.clone()));
        assert_eq!(check_status(&health, "db"), Status::Warn, "unchecked");
        run(&health, 0, Duration::from_secs(1)).await;
        assert_eq!(check_status(&health, "db"), Status::Pass);
        up.store(false, Ordering::SeqCst);
        run(&health, 0, Duration::from_secs(1)).await;
        assert_eq!(check_status(&health, "db"), Status::Warn);
        run(&health, 0, Duration::from_secs(1)).await;
        let report = health.report();
        let entry = &report.checks["db:responseTime"][0];
        assert_eq!(entry.status, Status::Fail);
        assert_eq!(entry.output.as_deref(), Some("connection refused"));
        up.store(true, Ordering::SeqCst);
        run(&health, 0, Duration::from_secs(1)).await;
        assert_eq!(check_status(&health, "db"), Status::Pass);
    }

    #[tokio::test]
    async fn a_failing_dependency_warns_but_keeps_the_process_ready() {
        let health = Health::default();
        let up = Arc::new(AtomicBool::new(true));
        health.register("db", "datastore", flaky(up.clone()));
        run(&health, 0, Duration::from_secs(1)).await;
        assert_eq!(health.report().status, Status::Pass);
        up.store(false, Ordering::SeqCst);
        for _ in 0..FAILS_BEFORE_FAIL {
            run(&health, 0, Duration::from_secs(1)).await;
        }
        assert_eq!(check_status(&health, "db"), Status::Fail);
        let report = health.report();
        assert_eq!(report.status, Status::Warn);
        let response = readyz_detailed(health.clone()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(readyz_public(health).await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_required_check_fails_readiness_and_passes_again_after_recovery() {
        let health = Health::default();
        let shared_up = Arc::new(AtomicBool::new(true));
        let local_up = Arc::new(AtomicBool::new(true));
        health.register("db", "datastore", flaky(shared_up.clone()));
        health.register_required("disk", "system", flaky(local_up.clone()));
        run(&health, 0, Duration::from_secs(1)).await;
        run(&health, 1, Duration::from_secs(1)).await;
        assert_eq!(health.report().status, Status::Pass);
        local_up.store(false, Ordering::SeqCst);
        run(&health, 1, Duration::from_secs(1)).await;
        assert_eq!(health.report().status, Status::Warn, "one failure warns");
        run(&health, 1, Duration::from_secs(1)).await;
        assert_eq!(health.report().status, Status::Fail);
        let response = readyz_public(health.clone()).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        local_up.store(true, Ordering::SeqCst);
        run(&health, 1, Duration::from_secs(1)).await;
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
        run(&health, 0, Duration::from_millis(20)).await;
        run(&health, 0, Duration::from_millis(20)).await;
        let report = health.report();
        assert_eq!(check_status(&health, "slow"), Status::Fail);
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
