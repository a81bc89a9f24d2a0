//! Bearer tokens: with `auth.tokens` set, every `/messages` route needs one; probes and the
//! OpenAPI document stay open.

use platform::testing::assert_problem;

use crate::helpers::{MessagesApp, spawn_with, unique_message};

async fn app() -> MessagesApp {
    spawn_with("memory:", &[("auth.tokens", "alpha-token, beta-token")]).await
}

fn with_token(request: reqwest::RequestBuilder, token: &str) -> reqwest::RequestBuilder {
    request.header("authorization", format!("Bearer {token}"))
}

#[tokio::test]
async fn without_a_token_every_messages_route_is_a_401_with_a_challenge() {
    let app = app().await;
    let digest = "a".repeat(64);
    for response in [
        app.post("x").await,
        app.get_message(&digest).await,
        app.app.get("/messages").await,
        app.app.get("/all-messages").await,
    ] {
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(challenge, r#"Bearer realm="messages""#);
        let problem = assert_problem(response, 401).await;
        assert_eq!(problem["type"], "urn:problem:unauthorized");
    }
}

#[tokio::test]
async fn a_wrong_token_or_scheme_is_a_401_naming_the_error() {
    let app = app().await;
    for header in [
        "Bearer alpha",
        "Bearer alpha-token-x",
        "Basic YWxwaGEtdG9rZW4=",
        "alpha-token",
    ] {
        let response = app
            .app
            .client
            .get(app.app.url("/messages"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_problem(response, 401).await;
        if header.starts_with("Bearer") {
            assert!(
                challenge.contains(r#"error="invalid_token""#),
                "{header}: {challenge}"
            );
        }
    }
}

#[tokio::test]
async fn any_configured_token_is_accepted() {
    let app = app().await;
    let message = unique_message();
    let posted = with_token(app.app.client.post(app.app.url("/messages")), "alpha-token")
        .json(&serde_json::json!({ "message": message }))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    let digest = crate::helpers::sha256_hex(&message);
    let fetched = with_token(
        app.app
            .client
            .get(app.app.url(&format!("/messages/{digest}"))),
        "beta-token",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(fetched.status(), 200);
    let listed = with_token(
        app.app.client.get(app.app.url("/all-messages")),
        "beta-token",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(listed.status(), 200);
}

#[tokio::test]
async fn probes_the_index_and_the_api_document_need_no_token() {
    let app = app().await;
    for path in ["/", "/livez", "/readyz", "/openapi.json"] {
        assert_eq!(app.app.get(path).await.status(), 200, "{path}");
    }
}
