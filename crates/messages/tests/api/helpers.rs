//! `spawn_with` and one method per endpoint.

use platform::testing::{Backend, TestApp};
use serde_json::{Value, json};
use sha2::Digest as _;

pub(crate) struct MessagesApp {
    pub(crate) app: TestApp,
}

/// messages on `storage_url` with extra `overrides`, TLS on as by default.
pub(crate) async fn spawn_with(storage_url: &str, overrides: &[(&str, &str)]) -> MessagesApp {
    let mut all = vec![("storage.url", storage_url)];
    all.extend_from_slice(overrides);
    MessagesApp {
        app: TestApp::spawn(&messages::service(), &all).await,
    }
}

/// messages on `backend`, or `None` when that backend is not configured (the skip is printed).
pub(crate) async fn spawn_on(backend: Backend) -> Option<MessagesApp> {
    let url = backend.storage_url("messages HTTP")?;
    Some(spawn_with(&url, &[]).await)
}

/// A message no other test posts, so suites can share one database.
pub(crate) fn unique_message() -> String {
    format!("message {}", uuid::Uuid::new_v4())
}

/// The digest the API must answer, computed independently of the service.
pub(crate) fn sha256_hex(message: &str) -> String {
    hex::encode(sha2::Sha256::digest(message.as_bytes()))
}

/// A cursor that starts the listing at "now": only messages first stored after this call
/// follow it. White-box: it uses the cursor's documented layout `<nanos, 20 digits>-<digest>`.
pub(crate) fn cursor_from_now() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:020}-{}", "0".repeat(64))
}

impl MessagesApp {
    pub(crate) async fn post_json(&self, body: Value) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url("/messages"))
            .json(&body)
            .send()
            .await
            .expect("request is sent")
    }

    pub(crate) async fn post(&self, message: &str) -> reqwest::Response {
        self.post_json(json!({ "message": message })).await
    }

    pub(crate) async fn post_raw(
        &self,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self.app.client.post(self.app.url("/messages")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send().await.expect("request is sent")
    }

    /// Posts `message`, asserts a 201, and returns the digest.
    pub(crate) async fn store(&self, message: &str) -> String {
        let response = self.post(message).await;
        assert_eq!(response.status(), 201, "POST /messages");
        let body: Value = response.json().await.expect("JSON body");
        body["digest"]
            .as_str()
            .expect("digest is a string")
            .to_owned()
    }

    pub(crate) async fn get_message(&self, digest: &str) -> reqwest::Response {
        self.app.get(&format!("/messages/{digest}")).await
    }

    /// The message stored under `digest`, asserting a 200.
    pub(crate) async fn message(&self, digest: &str) -> String {
        let response = self.get_message(digest).await;
        assert_eq!(response.status(), 200, "GET /messages/{digest}");
        let body: Value = response.json().await.expect("JSON body");
        body["message"]
            .as_str()
            .expect("message is a string")
            .to_owned()
    }

    /// Walks the listing at `path` (`/messages` or `/all-messages`) from `cursor`, `limit` per
    /// page, and returns every digest in order and the number of pages.
    pub(crate) async fn walk(
        &self,
        path: &str,
        cursor: &str,
        limit: usize,
    ) -> (Vec<String>, usize) {
        let mut digests = Vec::new();
        let mut cursor = cursor.to_owned();
        let mut pages = 0;
        loop {
            let response = self
                .app
                .get(&format!("{path}?limit={limit}&cursor={cursor}"))
                .await;
            assert_eq!(response.status(), 200, "{path}");
            let page: Value = response.json().await.unwrap();
            let list = page["digestList"]
                .as_array()
                .expect("digestList is an array");
            assert!(list.len() <= limit, "a page holds at most `limit` digests");
            digests.extend(list.iter().map(|d| d.as_str().unwrap().to_owned()));
            pages += 1;
            match page["next"].as_str() {
                Some(next) => cursor = next.to_owned(),
                None => return (digests, pages),
            }
        }
    }
}
