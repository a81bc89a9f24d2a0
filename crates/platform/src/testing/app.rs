//! The service under test: in process on random ports ([`TestApp`]) or as its binary
//! ([`ServiceProcess`]), a client for it, and what tests assert on its answers.

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
    /// A client without redirects or proxies; over TLS it trusts the server's certificate only.
    pub client: reqwest::Client,
    /// The PEM certificate the API serves, when it serves TLS.
    pub certificate: Option<Vec<u8>>,
    server: Option<RunningServer>,
}

impl TestApp {
    /// Starts `service` with test defaults (random ports, `memory:` storage, no drain delay,
    /// checks every 100 ms, a self-signed certificate of its own when TLS is on), overridden by
    /// `overrides` given as `("section.key", "value")`.
    pub async fn spawn<S>(service: &Service<S>, overrides: &[(&str, &str)]) -> TestApp
    where
        S: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
    {
        let prefix = service.name().to_ascii_uppercase();
        let mut env = BTreeMap::new();
        let tls_dir = temp_path("tls");
        let tls_dir = tls_dir.to_string_lossy();
        let defaults = [
            ("tls.self_signed_dir", tls_dir.as_ref()),
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
        let tls = loaded.platform.tls.clone();
        let server = server::start(service, loaded)
            .await
            .expect("service starts");
        let certificate = tls.enabled.then(|| {
            let paths = crate::tls::certificate_paths(service.name(), &tls)
                .expect("the server's certificate exists");
            std::fs::read(paths.cert).expect("the certificate is readable")
        });
        let client = client_trusting(certificate.as_deref());
        TestApp {
            address: format!("{}://{}", server.api_scheme(), server.api_addr()),
            certificate,
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

    /// `GET` of `path` on the API listener.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("the API answers")
    }

    /// `GET` of `path` on the admin listener.
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.admin_url(path))
            .send()
            .await
            .expect("the admin listener answers")
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

/// A client without redirects or proxies that trusts `certificate` (PEM) and nothing else, or
/// a plain-HTTP client when `None`.
pub fn client_trusting(certificate: Option<&[u8]>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        // Tests set header-read deadlines as short as 1 s, after which the server closes an
        // idle keep-alive connection; a request sent on one as it closes is reset. Dropping
        // pooled connections after half that keeps the client on the safe side of the race,
        // as the README asks of a proxy in front of `server.header_read_timeout`.
        .pool_idle_timeout(std::time::Duration::from_millis(500));
    if let Some(pem) = certificate {
        let certificate = reqwest::Certificate::from_pem(pem).expect("the certificate is PEM");
        builder = builder
            .tls_built_in_root_certs(false)
            .add_root_certificate(certificate);
    }
    builder.build().expect("client builds")
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

/// What a detailed `/readyz` (admin listener) answered: the HTTP status, the overall status
/// and each check's, keyed by the check's name (`postgres`, not `postgres:responseTime`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// 200 or 503.
    pub http_status: u16,
    /// `pass`, `warn` or `fail`.
    pub status: String,
    /// Each check's `pass`, `warn` or `fail`.
    pub checks: BTreeMap<String, String>,
}

impl Readiness {
    /// Reads a `/readyz` answer; `None` when it is not health JSON.
    pub async fn from_response(response: reqwest::Response) -> Option<Readiness> {
        let http_status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.ok()?;
        let status = body["status"].as_str()?.to_owned();
        let checks = body["checks"]
            .as_object()
            .map(|checks| {
                checks
                    .iter()
                    .filter_map(|(key, entries)| {
                        let name = key.strip_suffix(":responseTime").unwrap_or(key);
                        let status = entries.get(0)?.get("status")?.as_str()?;
                        Some((name.to_owned(), status.to_owned()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Readiness {
            http_status,
            status,
            checks,
        })
    }

    /// `GET url` with `client` and reads the answer; `None` when nothing readable came back.
    pub async fn fetch(client: &reqwest::Client, url: &str) -> Option<Readiness> {
        Readiness::from_response(client.get(url).send().await.ok()?).await
    }

    /// Every check passes and the process is ready.
    pub fn passing(&self) -> bool {
        self.http_status == 200 && self.status == "pass"
    }

    /// Still ready (200, `warn`) while a dependency check has failed repeatedly: an outage of a
    /// shared dependency is reported, never turned into unreadiness.
    pub fn serving_through_outage(&self) -> bool {
        self.http_status == 200
            && self.status == "warn"
            && self.checks.values().any(|status| status == "fail")
    }
}

/// Polls `condition` every 50 ms until it holds, for at most 10 s; fails the test otherwise.
/// For state that changes in the background (health checks, a backend coming back).
pub async fn eventually<F, Fut>(condition: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_within(Duration::from_secs(10), condition).await;
}

/// [`eventually`] with a deadline of `limit`: for what takes longer by design (a Prometheus
/// scraping and evaluating rules, an alert travelling through Alertmanager).
pub async fn eventually_within<F, Fut>(limit: Duration, condition: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A service binary running as its own process on random ports, killed when dropped.
pub struct ServiceProcess {
    child: std::process::Child,
    /// The bound API address, read from the start-up log line.
    pub api: std::net::SocketAddr,
    /// The bound admin address.
    pub admin: std::net::SocketAddr,
    /// Every log line after the start-up line (stdout keeps being drained into it).
    pub logs: std::sync::mpsc::Receiver<String>,
}

impl ServiceProcess {
    /// Runs `binary serve` for service `name` with a clean environment, JSON logs, random ports
    /// and no drain delay, plus `settings` given as `("section.key", "value")`; returns once it
    /// logged "Serving." (panics with its output if it exits first).
    pub fn start(binary: &str, name: &str, settings: &[(&str, &str)]) -> ServiceProcess {
        use std::io::{BufRead, BufReader};
        let prefix = name.to_ascii_uppercase();
        let mut command = std::process::Command::new(binary);
        command
            .arg("serve")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            // The SDK's chain finds these first: a service under test reaches DynamoDB only
            // through a local emulator, which takes any credentials.
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .stdout(std::process::Stdio::piped());
        let defaults = [
            ("server.listen", "127.0.0.1:0"),
            ("admin.listen", "127.0.0.1:0"),
            ("telemetry.log_format", "json"),
            ("shutdown.drain_delay", "0s"),
        ];
        for (key, value) in defaults.iter().chain(settings) {
            let key = format!("{prefix}__{}", key.to_ascii_uppercase().replace('.', "__"));
            command.env(key, value);
        }
        let mut child = command.spawn().expect("the service binary starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        let started = lines.by_ref().map_while(Result::ok).find_map(|line| {
            let parsed = serde_json::from_str::<serde_json::Value>(&line).ok();
            seen.push(line);
            parsed.filter(|line| line["message"] == "Serving.")
        });
        let Some(started) = started else {
            let status = child.wait();
            panic!(
                "{binary} exited before serving ({status:?}):\n{}",
                seen.join("\n")
            );
        };
        let (sender, logs) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        let address = |key: &str| {
            started[key]
                .as_str()
                .and_then(|addr| addr.parse().ok())
                .unwrap_or_else(|| panic!("the start-up line has no `{key}` address: {started}"))
        };
        ServiceProcess {
            api: address("api"),
            admin: address("admin"),
            child,
            logs,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits for the process to exit; returns its exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().ok().and_then(|status| status.code())
    }

    /// `kill -9`: no drain, no flush, nothing the process can do about it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A unique path in the temporary directory with extension `extension`.
pub fn temp_path(extension: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "platform-test-{}.{extension}",
        uuid::Uuid::new_v4().simple()
    ))
}
