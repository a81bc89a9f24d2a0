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

/// Two replicas limited through one Redis, under a namespace of their own.
async fn replicas_sharing_redis(redis: &str, burst: &str) -> (MessagesApp, MessagesApp) {
    let namespace = format!("test_{}", uuid::Uuid::new_v4().simple());
    let settings = [
        ("ratelimit.enabled", "true"),
        ("ratelimit.burst", burst),
        ("ratelimit.per_second", "0.01"),
        ("ratelimit.url", redis),
        ("ratelimit.namespace", namespace.as_str()),
    ];
    (
        spawn_with("memory:", &settings).await,
        spawn_with("memory:", &settings).await,
    )
}

#[tokio::test]
async fn replicas_share_one_allowance_through_redis() {
    let Some(redis) = platform::testing::Backend::Redis.storage_url("shared rate limit") else {
        return;
    };
    let (a, b) = replicas_sharing_redis(&redis, "2").await;
    assert_eq!(a.app.get("/messages?limit=1").await.status(), 200);
    assert_eq!(b.app.get("/messages?limit=1").await.status(), 200);
    // The burst of 2 is spent across both replicas, not per replica.
    let response = a.app.get("/messages?limit=1").await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((90..=100).contains(&retry_after), "{retry_after}");
    assert_problem(response, 429).await;
    assert_problem(b.app.get("/messages?limit=1").await, 429).await;
}

#[tokio::test]
async fn when_redis_is_unreachable_requests_pass_and_are_counted() {
    let Some(redis) = platform::testing::Backend::Redis.storage_url("shared rate limit") else {
        return;
    };
    let (proxy, via_proxy) = platform::testing::FaultProxy::in_front_of(&redis).await;
    let (app, _other) = replicas_sharing_redis(&via_proxy, "1").await;
    assert_eq!(app.app.get("/messages?limit=1").await.status(), 200);
    assert_eq!(app.app.get("/messages?limit=1").await.status(), 429);
    proxy.cut().await;
    // A broken limiter must not take the service down: the request goes through.
    assert_eq!(app.app.get("/messages?limit=1").await.status(), 200);
    let metrics = app.app.admin_get("/metrics").await.text().await.unwrap();
    let errors: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("ratelimit_backend_errors_total "))
        .expect("the error counter is exported")
        .parse()
        .unwrap();
    assert!(errors >= 1.0, "{metrics}");
    proxy.restore();
    platform::testing::eventually(|| async {
        app.app.get("/messages?limit=1").await.status() == 429
    })
    .await;
}
