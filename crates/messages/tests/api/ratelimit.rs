//! Per-client rate limits: 429 problems with `Retry-After` past the burst; clients behind a
//! trusted proxy are told apart by `X-Forwarded-For`, others cannot pick their own bucket.

use platform::testing::assert_problem;

use crate::helpers::{MessagesApp, spawn_with};

async fn get_as(app: &MessagesApp, forwarded_for: &str) -> reqwest::Response {
    app.app
        .client
        .get(app.app.url("/messages?limit=1"))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn past_the_burst_a_client_gets_429_with_retry_after() {
    let app = spawn_with(
        "memory:",
        &[
            ("ratelimit.enabled", "true"),
            ("ratelimit.burst", "3"),
            ("ratelimit.per_second", "0.01"),
        ],
    )
    .await;
    assert_eq!(app.post("one").await.status(), 201);
    assert_eq!(app.get_message(&"a".repeat(64)).await.status(), 404);
    assert_eq!(app.app.get("/messages").await.status(), 200);
    let response = app.post("four").await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // One token every 100 s at 0.01 per second.
    assert!((90..=100).contains(&retry_after), "{retry_after}");
    let problem = assert_problem(response, 429).await;
    assert_eq!(problem["type"], "urn:problem:rate-limited");
    // Probes are never limited.
    assert_eq!(app.app.get("/livez").await.status(), 200);
    assert_eq!(app.app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn off_by_default() {
    let app = spawn_with("memory:", &[]).await;
    for _ in 0..300 {
        assert_eq!(app.app.get("/messages?limit=1").await.status(), 200);
    }
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    let app = spawn_with(
        "memory:",
        &[
            ("ratelimit.enabled", "true"),
            ("ratelimit.burst", "1"),
            ("ratelimit.per_second", "0.01"),
            ("server.trusted_proxies", "127.0.0.1/32"),
        ],
    )
    .await;
    assert_eq!(get_as(&app, "198.51.100.1").await.status(), 200);
    assert_eq!(get_as(&app, "198.51.100.1").await.status(), 429);
    assert_eq!(get_as(&app, "198.51.100.2").await.status(), 200);
}

#[tokio::test]
async fn an_untrusted_peer_cannot_escape_its_bucket_by_forging_the_header() {
    let app = spawn_with(
        "memory:",
        &[
            ("ratelimit.enabled", "true"),
            ("ratelimit.burst", "1"),
            ("ratelimit.per_second", "0.01"),
        ],
    )
    .await;
    assert_eq!(get_as(&app, "198.51.100.1").await.status(), 200);
    assert_eq!(get_as(&app, "198.51.100.2").await.status(), 429);
}
