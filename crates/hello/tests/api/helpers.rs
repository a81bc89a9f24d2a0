//! `spawn_app` and one method per endpoint.

use platform::clock::WallClock;
use platform::testing::{Backend, TestApp};
use rand::Rng;
use serde_json::{Value, json};
use time::Date;

pub(crate) struct HelloApp {
    pub(crate) app: TestApp,
}

/// hello on `storage_url`, with "today" pinned to `today`, plus extra `overrides`.
pub(crate) async fn spawn_with(
    storage_url: &str,
    today: Date,
    overrides: &[(&str, &str)],
) -> HelloApp {
    let midnight = std::time::SystemTime::from(today.midnight().assume_utc());
    let service = hello::service_with_clock(WallClock::fixed(midnight));
    let mut all = vec![("storage.url", storage_url)];
    all.extend_from_slice(overrides);
    HelloApp {
        app: TestApp::spawn(&service, &all).await,
    }
}

/// hello on `backend`, or `None` when that backend is not configured (the skip is printed).
pub(crate) async fn spawn_on(backend: Backend, today: Date) -> Option<HelloApp> {
    let url = backend.storage_url("hello HTTP")?;
    Some(spawn_with(&url, today, &[]).await)
}

/// A username no other test uses, so suites can share one database.
pub(crate) fn unique_username() -> String {
    let mut rng = rand::rng();
    (0..20)
        .map(|_| rng.random_range(b'a'..=b'z') as char)
        .collect()
}

impl HelloApp {
    pub(crate) async fn put_birthday(&self, username: &str, body: Value) -> reqwest::Response {
        self.app
            .client
            .put(self.app.url(&format!("/hello/{username}")))
            .json(&body)
            .send()
            .await
            .expect("request is sent")
    }

    pub(crate) async fn put_date(&self, username: &str, date: &str) -> reqwest::Response {
        self.put_birthday(username, json!({ "dateOfBirth": date }))
            .await
    }

    pub(crate) async fn put_raw(
        &self,
        username: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self
            .app
            .client
            .put(self.app.url(&format!("/hello/{username}")))
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send().await.expect("request is sent")
    }

    pub(crate) async fn get_birthday(&self, username: &str) -> reqwest::Response {
        self.app
            .client
            .get(self.app.url(&format!("/hello/{username}")))
            .send()
            .await
            .expect("request is sent")
    }

    /// The greeting for `username`, asserting a 200.
    pub(crate) async fn greeting(&self, username: &str) -> String {
        let response = self.get_birthday(username).await;
        assert_eq!(response.status(), 200, "GET /hello/{username}");
        let body: Value = response.json().await.expect("JSON body");
        body["message"]
            .as_str()
            .expect("message is a string")
            .to_owned()
    }

    pub(crate) async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.app.admin_get(path).await
    }
}
