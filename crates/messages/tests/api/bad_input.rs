//! Bad input gets a 4xx problem and stores nothing.

use platform::testing::assert_problem;
use serde_json::json;

use crate::helpers::{MessagesApp, cursor_from_now, spawn_with};

async fn app() -> MessagesApp {
    spawn_with("memory:", &[("messages.max_bytes", "1KiB")]).await
}

async fn assert_nothing_listed(app: &MessagesApp, since: &str) {
    let (listed, _) = app.walk("/messages", since, 1000).await;
    assert!(listed.is_empty(), "stored: {listed:?}");
}

#[tokio::test]
async fn malformed_bodies_are_4xx_problems_that_store_nothing() {
    let app = app().await;
    let since = cursor_from_now();
    let cases: [(Option<&str>, &str, u16, &str); 8] = [
        (
            Some("application/json"),
            "{\"message\": ",
            400,
            "malformed-json",
        ),
        (Some("application/json"), "not json", 400, "malformed-json"),
        (Some("application/json"), "{}", 422, "invalid-body"),
        (
            Some("application/json"),
            "{\"message\": 42}",
            422,
            "invalid-body",
        ),
        (
            Some("application/json"),
            "{\"message\": null}",
            422,
            "invalid-body",
        ),
        (
            Some("application/json"),
            "[\"message\"]",
            422,
            "invalid-body",
        ),
        (
            Some("text/plain"),
            "{\"message\": \"x\"}",
            415,
            "unsupported-media-type",
        ),
        (None, "{\"message\": \"x\"}", 415, "unsupported-media-type"),
    ];
    for (content_type, body, status, kind) in cases {
        let problem = assert_problem(app.post_raw(content_type, body).await, status).await;
        assert_eq!(problem["type"], format!("urn:problem:{kind}"), "{body}");
    }
    assert_nothing_listed(&app, &since).await;
}

#[tokio::test]
async fn a_message_over_max_bytes_is_a_413_problem() {
    let app = app().await;
    let since = cursor_from_now();
    assert_eq!(
        app.post(&"a".repeat(1024)).await.status(),
        201,
        "exactly the limit is fine"
    );
    let problem = assert_problem(app.post(&"a".repeat(1025)).await, 413).await;
    assert_eq!(problem["type"], "urn:problem:message-too-large");
    assert!(
        problem["detail"].as_str().unwrap().contains("1024"),
        "{problem}"
    );
    // Counted in bytes, not characters: 342 three-byte characters are 1026 bytes.
    assert_problem(app.post(&"☃".repeat(342)).await, 413).await;
    let (listed, _) = app.walk("/messages", &since, 1000).await;
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn a_body_over_the_server_limit_is_a_413_problem() {
    let app = spawn_with("memory:", &[("server.body_limit", "2KiB")]).await;
    let body = json!({ "message": "a".repeat(4096) }).to_string();
    assert_problem(app.post_raw(Some("application/json"), body).await, 413).await;
}

#[tokio::test]
async fn the_default_body_limit_fits_the_largest_message_fully_escaped() {
    // 64 KiB of control characters: each is six bytes of JSON (`\u0001`).
    let app = spawn_with("memory:", &[]).await;
    let message = "\u{1}".repeat(64 * 1024);
    assert_eq!(app.post(&message).await.status(), 201);
}

#[tokio::test]
async fn malformed_digests_are_400_problems() {
    let app = app().await;
    for digest in [
        "abc".to_owned(),
        "g".repeat(64),
        "a".repeat(65),
        format!("{}%C3%A9", "a".repeat(63)),
        "%20".repeat(64),
    ] {
        let problem = assert_problem(app.get_message(&digest).await, 400).await;
        assert_eq!(problem["type"], "urn:problem:invalid-digest", "{digest}");
    }
    assert_problem(app.app.get("/messages/").await, 400).await;
}

#[tokio::test]
async fn bad_limits_and_cursors_are_400_problems() {
    let app = app().await;
    for query in [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=ten",
        "cursor=nonsense",
        "cursor=",
    ] {
        let response = app.app.get(&format!("/messages?{query}")).await;
        assert_problem(response, 400).await;
    }
}

#[tokio::test]
async fn wrong_methods_are_405_problems() {
    let app = app().await;
    let response = app
        .app
        .client
        .delete(app.app.url("/messages"))
        .send()
        .await
        .unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert_problem(response, 405).await;
    assert!(allow.contains("POST") && allow.contains("GET"), "{allow}");
}
