//! A service whose database does not answer yet when it starts waits for it (within
//! `storage.startup_timeout`) instead of failing its start.

use axum::Router;
use axum::routing::get;
use platform::Service;
use platform::testing::{FaultProxy, TestApp};

use super::server_url;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_database_is_unreachable_at_start_waits_for_it() {
    let Some(url) = server_url("TEST_POSTGRES_URL", "PostgreSQL") else {
        return;
    };
    let (proxy, proxied) = FaultProxy::in_front_of(&url).await;
    proxy.cut().await;
    let service = Service::new(
        "startuptest",
        "0.0.1",
        18997,
        |context: platform::Context| async move {
            let store = context
                .key_value(&platform::storage::behaviour::unique_namespace())
                .await?;
            Ok(Router::new().route(
                "/ok",
                get(move || async move {
                    store
                        .put("k", b"v")
                        .await
                        .map(|()| "stored")
                        .unwrap_or("not stored")
                }),
            ))
        },
    );
    let starting = tokio::spawn(async move {
        TestApp::spawn(
            &service,
            &[
                ("storage.url", proxied.as_str()),
                ("storage.connect_timeout", "200ms"),
            ],
        )
        .await
    });
    // Each attempt is one refused connection: two mean the start tried again instead of
    // failing. Then the database comes back.
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        proxy.refused_at_least(2),
    )
    .await
    .expect("the start tried to connect a second time");
    assert!(
        !starting.is_finished(),
        "the start gave up while the database was away"
    );
    proxy.restore();
    let app = starting
        .await
        .expect("the service started once its database answered");
    let answer = app.get("/ok").await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "stored");
}
