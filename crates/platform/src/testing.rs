//! Building blocks for services' own tests (feature `testing`): [`TestApp`] runs the real
//! start-up path — configuration, storage, stack, admin — on random ports inside the test.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{self, Source};
use crate::server::{self, RunningServer};
use crate::service::Service;

/// A service serving on `127.0.0.1:0` (API and admin), with a client.
pub struct TestApp {
    /// `http://127.0.0.1:<port>` of the API.
    pub address: String,
    /// `http://127.0.0.1:<port>` of the admin listener.
    pub admin_address: String,
    /// A client without redirects or proxies.
    pub client: reqwest::Client,
    server: Option<RunningServer>,
}

impl TestApp {
    /// Starts `service` with test defaults (random ports, `memory:` storage, no drain delay,
    /// checks every 100 ms), overridden by `overrides` given as `("section.key", "value")`.
    pub async fn spawn<S>(service: &Service<S>, overrides: &[(&str, &str)]) -> TestApp
    where
        S: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
    {
        let prefix = service.name().to_ascii_uppercase();
        let mut env = BTreeMap::new();
        let defaults = [
            ("server.listen", "127.0.0.1:0"),
            ("admin.listen", "127.0.0.1:0"),
            ("storage.url", "memory:"),
            ("shutdown.drain_delay", "0s"),
            ("health.check_interval", "100ms"),
        ];
        for (key, value) in defaults.iter().chain(overrides) {
            let key = format!("{prefix}__{}", key.to_ascii_uppercase().replace('.', "__"));
            env.insert(key, (*value).to_owned());
        }
        let source = Source { file: None, env };
        let loaded = config::load::<S>(service.name(), &service.default_settings(), &source)
            .expect("test configuration is valid");
        let server = server::start(service, loaded)
            .await
            .expect("service starts");
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .expect("client builds");
        TestApp {
            address: format!("http://{}", server.api_addr()),
            admin_address: format!("http://{}", server.admin_addr()),
            client,
            server: Some(server),
        }
    }

    /// The API URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The admin URL of `path`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin_address)
    }

    /// Drains the server with no delay and a 5 s grace.
    pub async fn shutdown(mut self) -> bool {
        match self.server.take() {
            Some(server) => {
                server
                    .shutdown(Duration::ZERO, Duration::from_secs(5))
                    .await
            }
            None => true,
        }
    }
}

/// Asserts `response` is a problem of `status` and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of {}",
        response.url()
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, crate::http::problem::CONTENT_TYPE);
    let echoed_id = response
        .headers()
        .get(crate::http::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: serde_json::Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status, "{body}");
    for member in ["type", "title", "detail", "request_id"] {
        assert!(body[member].is_string(), "problem lacks `{member}`: {body}");
    }
    assert_eq!(
        body["request_id"].as_str(),
        echoed_id.as_deref(),
        "request_id echoes the header"
    );
    body
}
