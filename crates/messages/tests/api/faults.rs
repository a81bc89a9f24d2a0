//! A backend that goes away: fast 503 problems while it is gone, with the process still ready
//! and the failing check reported, and recovery by itself when it returns. A proxy cuts messages off the real server.

use std::time::{Duration, Instant};

use platform::testing::{Backend, FaultProxy, Readiness, assert_problem, eventually};

use crate::helpers::{sha256_hex, spawn_with, unique_message};

async fn backend_outage_gives_503_and_recovers(backend: Backend) {
    let Some(url) = backend.storage_url("messages fault") else {
        return;
    };
    let (proxy, via_proxy) = FaultProxy::in_front_of(&url).await;
    let app = spawn_with(
        &via_proxy,
        &[
            ("storage.connect_timeout", "300ms"),
            ("storage.operation_timeout", "500ms"),
            ("health.check_timeout", "300ms"),
        ],
    )
    .await;
    // The first write opens connections through the proxy; on a loaded machine that can
    // outlast this test's tight timeouts, so wait for one write to land: the outage is what
    // is under test, and it must still work before the cut.
    let first = unique_message();
    eventually(|| async { app.post(&first).await.status() == 201 }).await;
    let stored = sha256_hex(&first);

    proxy.cut().await;
    let started = Instant::now();
    let response = app.post(&unique_message()).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, 503).await;
    assert_problem(app.get_message(&stored).await, 503).await;
    // Bounded by the storage timeouts, not by the client giving up.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The process stays in the Service, answering 503 problems, and reports the failing
    // dependency in its details and in a metric.
    eventually(|| async {
        Readiness::from_response(app.app.admin_get("/readyz").await)
            .await
            .is_some_and(|readiness| readiness.serving_through_outage())
    })
    .await;
    assert_eq!(app.app.get("/readyz").await.status(), 200);
    let metrics = app.app.admin_get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("health_check_status{") && line.ends_with(" 0")),
        "no failing check in the metrics"
    );

    proxy.restore();
    eventually(|| async { app.get_message(&stored).await.status() == 200 }).await;
    let message = unique_message();
    assert_eq!(app.store(&message).await, sha256_hex(&message));
    eventually(|| async {
        Readiness::from_response(app.app.admin_get("/readyz").await)
            .await
            .is_some_and(|readiness| readiness.passing())
    })
    .await;
}

#[tokio::test]
async fn postgres_outage() {
    backend_outage_gives_503_and_recovers(Backend::Postgres).await;
}

#[tokio::test]
async fn mysql_outage() {
    backend_outage_gives_503_and_recovers(Backend::Mysql).await;
}

#[tokio::test]
async fn redis_outage() {
    backend_outage_gives_503_and_recovers(Backend::Redis).await;
}
