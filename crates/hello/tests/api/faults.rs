//! A backend that goes away: fast 503 problems while it is gone, with the process still ready
//! and the failing check reported, and recovery by itself when it returns. The real server
//! keeps running; a proxy cuts hello off it.

use platform::testing::{Backend, FaultProxy, Readiness, assert_problem, eventually};
use time::macros::date;

use crate::helpers::{spawn_with, unique_username};

async fn backend_outage_gives_503_and_recovers(backend: Backend) {
    let Some(url) = backend.storage_url("hello fault") else {
        return;
    };
    let (proxy, via_proxy) = FaultProxy::in_front_of(&url).await;
    let app = spawn_with(
        &via_proxy,
        date!(2024 - 06 - 15),
        &[
            ("storage.connect_timeout", "300ms"),
            ("storage.operation_timeout", "500ms"),
            ("health.check_timeout", "300ms"),
        ],
    )
    .await;
    let user = unique_username();
    // The first write opens connections through the proxy; on a loaded machine that can
    // outlast this test's tight timeouts, so wait for one write to land: the outage is what
    // is under test, and it must still work before the cut.
    eventually(|| async { app.put_date(&user, "1990-06-16").await.status() == 204 }).await;

    proxy.cut().await;
    let problem = assert_problem(app.get_birthday(&user).await, 503).await;
    assert_eq!(problem["title"], "Service Unavailable");
    let response = app.put_date(&user, "1990-06-17").await;
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, 503).await;
    // The process stays in the Service, answering 503 problems, and reports the failing
    // dependency in its details and in a metric.
    eventually(|| async {
        Readiness::from_response(app.admin_get("/readyz").await)
            .await
            .is_some_and(|readiness| readiness.serving_through_outage())
    })
    .await;
    assert_eq!(app.app.get("/readyz").await.status(), 200);
    let metrics = app.admin_get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("health_check_status{") && line.ends_with(" 0")),
        "no failing check in the metrics"
    );

    proxy.restore();
    eventually(|| async { app.get_birthday(&user).await.status() == 200 }).await;
    assert_eq!(
        app.greeting(&user).await,
        format!("Hello, {user}! Your birthday is in 1 day")
    );
    eventually(|| async {
        Readiness::from_response(app.admin_get("/readyz").await)
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
