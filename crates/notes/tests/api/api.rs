//! The JSON API: tokens, pads and notes CRUD, ownership, validation, and the OpenAPI document.

use platform::testing::assert_problem;
use serde_json::{Value, json};

use crate::helpers::{NotesApp, PASSWORD, on_every_backend, spawn_sqlite};

on_every_backend!(
    pads_and_notes_crud_with_a_token,
    another_users_data_is_not_found
);

struct Client<'a> {
    app: &'a NotesApp,
    token: String,
}

impl Client<'_> {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .app
            .app
            .client
            .request(method, self.app.app.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }
}

/// A new user and a token for them.
async fn client(app: &NotesApp) -> Client<'_> {
    let (_, email) = app.signed_in().await;
    let response = app
        .app
        .client
        .post(app.app.url("/api/v1/tokens"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    Client {
        app,
        token: body["token"].as_str().unwrap().to_owned(),
    }
}

async fn pads_and_notes_crud_with_a_token(app: &NotesApp) {
    use reqwest::Method;
    let client = client(app).await;
    let response = client
        .send(
            Method::POST,
            "/api/v1/pads",
            Some(json!({"name": "api pad"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let pad: Value = response.json().await.unwrap();
    let pad_id = pad["id"].as_i64().unwrap();

    let response = client
        .send(
            Method::POST,
            "/api/v1/notes",
            Some(json!({"name": "api note", "text": "<b>kept as text</b>", "pad_id": pad_id})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let note: Value = response.json().await.unwrap();
    assert_eq!(note["text"], "<b>kept as text</b>");
    assert_eq!(location, format!("/api/v1/notes/{}", note["id"]));

    let listed: Value = client
        .send(
            Method::GET,
            &format!("/api/v1/notes?pad={pad_id}&order=name"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let updated: Value = client
        .send(
            Method::PUT,
            &location,
            Some(json!({"name": "renamed", "text": "new", "pad_id": null})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(updated["name"], "renamed");
    assert_eq!(updated["pad_id"], Value::Null);

    let invalid = client
        .send(
            Method::POST,
            "/api/v1/notes",
            Some(json!({"name": "", "text": ""})),
        )
        .await;
    let problem = assert_problem(invalid, 422).await;
    assert_eq!(problem["errors"]["name"], "Name is required");
    assert_eq!(problem["errors"]["text"], "Text is required");

    assert_eq!(
        client.send(Method::DELETE, &location, None).await.status(),
        204
    );
    assert_problem(client.send(Method::GET, &location, None).await, 404).await;
    let pad_path = format!("/api/v1/pads/{pad_id}");
    assert_eq!(
        client.send(Method::DELETE, &pad_path, None).await.status(),
        204
    );
    assert_problem(client.send(Method::DELETE, &pad_path, None).await, 404).await;
}

async fn another_users_data_is_not_found(app: &NotesApp) {
    use reqwest::Method;
    let owner = client(app).await;
    let intruder = client(app).await;
    let pad: Value = owner
        .send(
            Method::POST,
            "/api/v1/pads",
            Some(json!({"name": "private"})),
        )
        .await
        .json()
        .await
        .unwrap();
    let pad_path = format!("/api/v1/pads/{}", pad["id"]);
    assert_problem(intruder.send(Method::GET, &pad_path, None).await, 404).await;
    assert_problem(
        intruder
            .send(Method::PUT, &pad_path, Some(json!({"name": "mine now"})))
            .await,
        404,
    )
    .await;
    let response = intruder
        .send(
            Method::POST,
            "/api/v1/notes",
            Some(json!({"name": "n", "text": "t", "pad_id": pad["id"]})),
        )
        .await;
    let problem = assert_problem(response, 422).await;
    assert_eq!(problem["errors"]["pad_id"], "Pad does not exist");
    let listed: Value = intruder
        .send(Method::GET, "/api/v1/notes", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn requests_without_valid_credentials_are_401() {
    let app = spawn_sqlite(&[]).await;
    let response = app.app.get("/api/v1/pads").await;
    assert!(response.headers().contains_key("www-authenticate"));
    assert_problem(response, 401).await;
    let response = app
        .app
        .client
        .get(app.app.url("/api/v1/notes"))
        .bearer_auth("0".repeat(64))
        .send()
        .await
        .unwrap();
    assert_problem(response, 401).await;
    let response = app
        .app
        .client
        .post(app.app.url("/api/v1/tokens"))
        .json(&json!({"email": "nobody@example.com", "password": "whatever"}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 401).await;
}

#[tokio::test]
async fn the_session_cookie_authenticates_the_api_too() {
    let app = spawn_sqlite(&[]).await;
    let (browser, _) = app.signed_in().await;
    browser.create_pad("from the page").await;
    let pads: Value = browser.get("/api/v1/pads").await.json().await.unwrap();
    assert_eq!(pads[0]["name"], "from the page");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = spawn_sqlite(&[]).await;
    let document: Value = app.app.get("/openapi.json").await.json().await.unwrap();
    for path in [
        "/api/v1/tokens",
        "/api/v1/pads",
        "/api/v1/pads/{id}",
        "/api/v1/notes",
        "/api/v1/notes/{id}",
    ] {
        assert!(document["paths"][path].is_object(), "{path}");
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
}
