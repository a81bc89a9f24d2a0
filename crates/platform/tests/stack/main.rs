//! The platform's HTTP stack with handlers built to misbehave: slow, hanging, panicking.
//! Every case goes through the real start-up path on random ports (`TestApp`).

// A failed unwrap in a test helper is the test failing, loudly, where it happened.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{MethodRouter, get};
use platform::Service;
use platform::testing::{TestApp, assert_problem};
use tokio::sync::Notify;

/// A service whose `/hold` waits until the test releases it, `/drip` sends the first part of
/// its body and the rest once released, `/hang` never answers, and `/panic` panics.
fn misbehaving(release: Arc<Notify>, entered: Arc<Notify>) -> Service {
    Service::new("stacktest", "0.0.1", 18999, move |_context| {
        let release = release.clone();
        let entered = entered.clone();
        async move {
            Ok(Router::new()
                .route("/hold", held(release.clone(), entered))
                .route("/drip", dripped(release))
                .route("/hang", get(futures::future::pending::<&'static str>))
                .route("/panic", get(explode))
                .route("/ok", get(|| async { "ok" })))
        }
    })
}

/// `GET` that tells `entered` it began, then answers once `release` is notified.
fn held(release: Arc<Notify>, entered: Arc<Notify>) -> MethodRouter {
    get(move || async move {
        entered.notify_one();
        release.notified().await;
        "released"
    })
}

/// `GET` whose body's first part goes out at once and the rest once `release` is notified.
fn dripped(release: Arc<Notify>) -> MethodRouter {
    get(move || async move {
        let first = futures::stream::once(async { Ok::<_, std::io::Error>("first,") });
        let rest = futures::stream::once(async move {
            release.notified().await;
            Ok("rest")
        });
        axum::body::Body::from_stream(futures::StreamExt::chain(first, rest))
    })
}

async fn explode() -> &'static str {
    panic!("handler exploded")
}

/// What every answer carries, including those the platform gives without running the route
/// (shed, timed out, panicked): the security headers and the request id.
fn assert_answer_headers(response: &reqwest::Response) {
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(headers.contains_key("content-security-policy"));
    assert_eq!(headers["x-request-id"].len(), 36, "{headers:?}");
}

#[tokio::test]
async fn requests_beyond_max_concurrency_are_shed_with_503_and_retry_after() {
    let (release, entered) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let app = TestApp::spawn(
        &misbehaving(release.clone(), entered.clone()),
        &[("server.max_concurrency", "1")],
    )
    .await;
    let held = tokio::spawn({
        let (client, url) = (app.client.clone(), app.url("/hold"));
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    });
    entered.notified().await;
    let shed = app.get("/ok").await;
    assert_eq!(shed.headers()["retry-after"], "1");
    assert_answer_headers(&shed);
    let problem = assert_problem(shed, 503).await;
    assert_eq!(problem["type"], "urn:problem:overloaded");
    release.notify_one();
    assert_eq!(held.await.unwrap(), "released");
    assert_eq!(app.get("/ok").await.status(), 200, "capacity returns");
}

#[tokio::test]
async fn requests_over_the_timeout_get_a_503_problem_not_408() {
    let app = TestApp::spawn(
        &misbehaving(Arc::new(Notify::new()), Arc::new(Notify::new())),
        &[("server.request_timeout", "100ms")],
    )
    .await;
    let timed_out = app.get("/hang").await;
    assert_answer_headers(&timed_out);
    let problem = assert_problem(timed_out, 503).await;
    assert_eq!(problem["type"], "urn:problem:timeout");
    let metrics = app.admin_get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(
            r#"http_route="/hang",http_request_method="GET",http_response_status_code="503""#
        ),
        "timeouts are counted: {metrics}"
    );
}

#[tokio::test]
async fn a_panicking_handler_answers_500_problem_and_the_server_lives_on() {
    let app = TestApp::spawn(
        &misbehaving(Arc::new(Notify::new()), Arc::new(Notify::new())),
        &[],
    )
    .await;
    let panicked = app.get("/panic").await;
    assert_answer_headers(&panicked);
    let problem = assert_problem(panicked, 500).await;
    assert!(
        !problem["detail"].as_str().unwrap().contains("exploded"),
        "panic messages stay in the log"
    );
    assert_eq!(app.get("/ok").await.status(), 200);
}

#[tokio::test]
async fn admin_endpoints_are_not_on_the_api_port() {
    let app = TestApp::spawn(
        &misbehaving(Arc::new(Notify::new()), Arc::new(Notify::new())),
        &[],
    )
    .await;
    for path in ["/metrics", "/info"] {
        assert_problem(app.get(path).await, 404).await;
        assert_eq!(app.admin_get(path).await.status(), 200);
    }
}

#[tokio::test]
async fn in_flight_requests_finish_during_graceful_shutdown() {
    let (release, entered) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let app = TestApp::spawn(&misbehaving(release.clone(), entered.clone()), &[]).await;
    let held = tokio::spawn({
        let (client, url) = (app.client.clone(), app.url("/hold"));
        async move { client.get(url).send().await.unwrap().text().await.unwrap() }
    });
    entered.notified().await;
    let shutdown = tokio::spawn(app.shutdown());
    release.notify_one();
    assert_eq!(held.await.unwrap(), "released");
    assert!(shutdown.await.unwrap(), "drained within the grace period");
}

#[tokio::test]
async fn traces_are_exported_over_otlp_http_and_continue_the_callers_trace() {
    // A real OTLP/HTTP endpoint: records every POST body sent to /v1/traces.
    let (bodies_tx, mut bodies) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<u8>)>();
    let collector = Router::new().route(
        "/v1/traces",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let bodies_tx = bodies_tx.clone();
                async move {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let _ = bodies_tx.send((content_type, body.to_vec()));
                    ""
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let settings = platform::config::TelemetrySettings {
        otlp_endpoint: Some(endpoint),
        log_level: "info".to_owned(),
        ..Default::default()
    };
    let guard = platform::telemetry::init("stacktest", "0.0.1", &settings).unwrap();
    let app = TestApp::spawn(
        &misbehaving(Arc::new(Notify::new()), Arc::new(Notify::new())),
        &[],
    )
    .await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = app
        .client
        .get(app.url("/ok"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The exporter runs on its own thread with a blocking client.
    tokio::task::spawn_blocking(move || guard.flush())
        .await
        .unwrap();
    let (content_type, body) = tokio::time::timeout(Duration::from_secs(10), bodies.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(content_type, "application/x-protobuf");
    let trace_bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    assert!(
        body.windows(16)
            .any(|window| window == trace_bytes.as_slice()),
        "the span continues the caller's trace"
    );
    assert!(
        body.windows(9).any(|window| window == b"stacktest"),
        "the resource names the service"
    );
}

mod connections;
mod early_answers;
