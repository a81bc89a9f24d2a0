//! Building blocks for services' own tests (feature `testing`): [`TestApp`] runs the real
//! start-up path — configuration, storage, stack, admin — on random ports inside the test;
//! [`ServiceProcess`] runs a service binary; [`FaultProxy`] cuts a service off a shared server;
//! [`ServerProcess`] runs a private instance of a real server that a test may stop and start,
//! and [`backend_restart`] drives writes through such an outage.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{self, Source};
use crate::server::{self, RunningServer};
use crate::service::Service;

mod outage;
mod servers;

pub use outage::{OUTAGE_ANSWER_LIMIT, OutageReport, Refusal, backend_restart};
pub use servers::{Server, ServerProcess};

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
        .no_proxy();
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

/// A storage backend a test suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `memory:`, always available.
    Memory,
    /// A fresh SQLite file in the temporary directory, always available.
    Sqlite,
    /// `TEST_POSTGRES_URL`.
    Postgres,
    /// `TEST_MYSQL_URL`.
    Mysql,
    /// `TEST_REDIS_URL`.
    Redis,
    /// `TEST_DYNAMODB_URL` (an emulator's `dynamodb://TABLE?region=…&endpoint=…`), with a
    /// table of its own per call; the SDK takes the emulator's (dummy) credentials from
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    DynamoDb,
}

impl Backend {
    /// Every backend, in a fixed order.
    pub const ALL: [Backend; 6] = [
        Backend::Memory,
        Backend::Sqlite,
        Backend::Postgres,
        Backend::Mysql,
        Backend::Redis,
        Backend::DynamoDb,
    ];

    /// The variable naming a server backend's URL.
    pub fn variable(self) -> Option<&'static str> {
        match self {
            Backend::Memory | Backend::Sqlite => None,
            Backend::Postgres => Some("TEST_POSTGRES_URL"),
            Backend::Mysql => Some("TEST_MYSQL_URL"),
            Backend::Redis => Some("TEST_REDIS_URL"),
            Backend::DynamoDb => Some("TEST_DYNAMODB_URL"),
        }
    }

    /// The `storage.url` to test against, or `None` when the server backend is not configured;
    /// then it prints `skipped: …` so a plain `cargo test` says what it did not run.
    ///
    /// Under CI (`CI` set) a missing variable is a failure, never a silent skip.
    #[allow(clippy::disallowed_methods)] // Test infrastructure reads the TEST_* variables by design.
    pub fn storage_url(self, suite: &str) -> Option<String> {
        match (self, self.variable()) {
            (Backend::Memory, _) => Some("memory:".to_owned()),
            (Backend::Sqlite, _) => Some(format!("sqlite://{}", temp_path("db").display())),
            (_, Some(variable)) => {
                let url = std::env::var(variable).ok().filter(|url| !url.is_empty());
                let what = format!("{variable} for the {self:?} {suite} suite");
                if !require(&what, url.is_some()) {
                    return None;
                }
                if self == Backend::DynamoDb {
                    let credentials = std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
                        && std::env::var_os("AWS_SECRET_ACCESS_KEY").is_some();
                    let what = format!(
                        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any values, for the \
                         emulator) for the {self:?} {suite} suite"
                    );
                    if !require(&what, credentials) {
                        return None;
                    }
                    return url.map(|url| unique_dynamodb_table(&url));
                }
                url
            }
            (_, None) => None,
        }
    }
}

/// Whether a test that needs `what` (a tool, a server) may go on: `true` when it is available.
/// Otherwise the test prints `skipped: <what> not available` and should return, except under CI
/// (`CI` set), where a missing dependency fails the test: CI must never pass by skipping.
pub fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    #[allow(clippy::disallowed_methods)] // Detects CI; configuration is not read here.
    let in_ci = std::env::var_os("CI").is_some();
    assert!(!in_ci, "{what} is required under CI but is not available");
    // Straight to the stderr handle: libtest captures `eprintln!` of passing tests.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {what} not available");
    false
}

/// Runs the external tool `program` (promtool, prometheus…) with `args`, feeding it `stdin`.
/// `None` when it is not installed (see [`require`]); the caller asserts on the output.
pub fn run_tool(program: &str, args: &[&str], stdin: &[u8]) -> Option<std::process::Output> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let spawned = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            require(program, false);
            return None;
        }
        Err(error) => panic!("{program} cannot start: {error}"),
    };
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin).expect("the tool reads its input");
    }
    Some(child.wait_with_output().expect("the tool finishes"))
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

/// Writes under load until `target` writes are acknowledged, then `kill -9`s `server`.
///
/// `writers` tasks each call `write` in a loop. `write` returns `Some(acknowledgement)` for a
/// write the service confirmed and `None` once a request fails because the process is gone,
/// which ends that task; it asserts on any other answer. Returns every acknowledgement, for the
/// caller to look up after restarting the service: the durability check of each service.
pub async fn acknowledged_until_killed<T, W, Fut>(
    server: &mut ServiceProcess,
    writers: usize,
    target: usize,
    write: W,
) -> Vec<T>
where
    T: Send + 'static,
    W: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<T>> + Send + 'static,
{
    use std::sync::Mutex;
    let write = Arc::new(write);
    let acknowledged: Arc<Mutex<Vec<T>>> = Arc::default();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (write, acknowledged) = (write.clone(), acknowledged.clone());
            tokio::spawn(async move {
                while let Some(acknowledgement) = write().await {
                    acknowledged
                        .lock()
                        .expect("no writer panics holding the lock")
                        .push(acknowledgement);
                }
            })
        })
        .collect();
    eventually_within(Duration::from_secs(60), || async {
        acknowledged
            .lock()
            .map_or(true, |done| done.len() >= target)
    })
    .await;
    server.kill();
    for task in tasks {
        task.await.expect("a writer failed");
    }
    let mut acknowledged = acknowledged.lock().expect("the writers are done");
    std::mem::take(&mut *acknowledged)
}

/// `url` (`dynamodb://TABLE?…`) with a table of its own, `TABLE_` and 16 random hex digits, so
/// tests never see each other's items.
pub fn unique_dynamodb_table(url: &str) -> String {
    let suffix = format!("_{:016x}", rand::random::<u64>());
    match url.find('?') {
        Some(query) => format!("{}{suffix}{}", &url[..query], &url[query..]),
        None => format!("{url}{suffix}"),
    }
}

/// A unique path in the temporary directory with extension `extension`.
pub fn temp_path(extension: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "platform-test-{}.{extension}",
        uuid::Uuid::new_v4().simple()
    ))
}

/// A TCP proxy between a service and a real server, that a test can cut and restore: the
/// backend "dies" for the service while the real server keeps running for everyone else.
pub struct FaultProxy {
    addr: std::net::SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
    /// Connections being forwarded; [`cut`](FaultProxy::cut) waits until there are none.
    forwarding: Arc<tokio::sync::watch::Sender<usize>>,
    /// Connections refused while cut, so a test can wait for a client's attempts.
    refused: Arc<tokio::sync::watch::Sender<usize>>,
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:0` forwarding to `target` (`host:port`).
    pub async fn start(target: String) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy binds");
        let addr = listener.local_addr().expect("proxy has an address");
        let (up, watch) = tokio::sync::watch::channel(true);
        let forwarding = Arc::new(tokio::sync::watch::Sender::new(0_usize));
        let counter = forwarding.clone();
        let refused = Arc::new(tokio::sync::watch::Sender::new(0_usize));
        let refusals = refused.clone();
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                // Counted before looking at `up`: a `cut` that has not seen this connection
                // counted is one this connection sees.
                counter.send_modify(|open| *open += 1);
                if !*watch.borrow() {
                    counter.send_modify(|open| *open -= 1);
                    refusals.send_modify(|refused| *refused += 1);
                    continue; // Dropping the socket refuses the connection.
                }
                let (target, watch, counter) = (target.clone(), watch.clone(), counter.clone());
                tokio::spawn(async move {
                    forward(inbound, &target, watch).await;
                    counter.send_modify(|open| *open -= 1);
                });
            }
        });
        FaultProxy {
            addr,
            up,
            forwarding,
            refused,
        }
    }

    /// Starts a proxy in front of the server `url` names (a storage or broker URL) and returns it
    /// with the same URL pointed at the proxy, ready for `storage.url`.
    pub async fn in_front_of(url: &str) -> (FaultProxy, String) {
        let mut parsed = url::Url::parse(url).expect("server URLs parse");
        let host = parsed
            .host_str()
            .expect("server URLs name a host")
            .to_owned();
        let port = parsed
            .port_or_known_default()
            .expect("server URLs have a port");
        let proxy = FaultProxy::start(format!("{host}:{port}")).await;
        parsed
            .set_port(Some(proxy.addr().port()))
            .expect("server URLs take a port");
        (proxy, parsed.to_string())
    }

    /// The proxy's address, to put in a URL instead of the server's.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones; returns once every connection is
    /// closed, so that nothing sent after it reaches the server.
    pub async fn cut(&self) {
        let _ = self.up.send(false);
        let _ = self
            .forwarding
            .subscribe()
            .wait_for(|open| *open == 0)
            .await;
    }

    /// Returns once the proxy has refused `count` connections while cut.
    pub async fn refused_at_least(&self, count: usize) {
        let _ = self
            .refused
            .subscribe()
            .wait_for(|refused| *refused >= count)
            .await;
    }

    /// Accepts and forwards connections again.
    pub fn restore(&self) {
        let _ = self.up.send(true);
    }
}

/// Pipes `inbound` to `target` until either side closes or the proxy is cut; both sockets
/// are closed on return.
async fn forward(
    mut inbound: tokio::net::TcpStream,
    target: &str,
    mut up: tokio::sync::watch::Receiver<bool>,
) {
    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}

/// A headless Chromium behind `chromedriver`, started on a free port for one test and stopped
/// when dropped. `None` (skipped locally, a failure under CI) when either is not installed.
pub struct Browser {
    driver: std::process::Child,
    url: String,
    profiles: Vec<std::path::PathBuf>,
}

impl Browser {
    /// Starts `chromedriver` and waits until it answers.
    pub async fn start() -> Option<Browser> {
        let installed = std::path::Path::new("/usr/bin/chromedriver").is_file()
            && std::path::Path::new("/usr/bin/chromium").is_file();
        if !require("chromium and chromedriver (Debian packages)", installed) {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let driver = std::process::Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        let client = reqwest::Client::new();
        eventually(|| async {
            client
                .get(&status)
                .send()
                .await
                .is_ok_and(|response| response.status().is_success())
        })
        .await;
        Some(Browser {
            driver,
            url,
            profiles: Vec::new(),
        })
    }

    /// A new browser window with a fresh profile (no shared cookies or storage), headless and
    /// with nothing reaching outside the machine.
    pub async fn session(&mut self) -> fantoccini::Client {
        let profile = temp_path("chromium");
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        self.profiles.push(profile);
        let capabilities = match capabilities {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("built as an object"),
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        fantoccini::ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a browser session starts")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        for profile in &self.profiles {
            let _ = std::fs::remove_dir_all(profile);
        }
    }
}

/// Asserts that the SLO material committed under `deploy/` (`deploy` is its path) is what the
/// declaration generates now: `prometheus/rules/<service>.yml`, `grafana/dashboards/<service>.json`,
/// `openslo/<service>.yaml`, `kubernetes/base/<service>/prometheusrule.yaml` and the Helm
/// chart's copy, `helm/sre-service/files/rules/<service>.yaml`. A stale file
/// fails with the command that regenerates it.
pub fn assert_generated_slo_files<S>(deploy: &std::path::Path, service: &Service<S>)
where
    S: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
{
    let (slos, dashboard) = (service.slos(), service.dashboard());
    let service = service.name();
    let files: [(String, &str, String); 5] = [
        (
            format!("prometheus/rules/{service}.yml"),
            "rules",
            crate::slo::rules::render(service, slos),
        ),
        (
            format!("grafana/dashboards/{service}.json"),
            "dashboard",
            dashboard,
        ),
        (
            format!("openslo/{service}.yaml"),
            "openslo",
            crate::slo::openslo::render(service, slos),
        ),
        (
            format!("kubernetes/base/{service}/prometheusrule.yaml"),
            "prometheus-rule",
            crate::slo::rules::render_prometheus_rule(service, slos),
        ),
        // The Helm chart carries the same rule: a chart cannot read files outside itself.
        (
            format!("helm/sre-service/files/rules/{service}.yaml"),
            "prometheus-rule",
            crate::slo::rules::render_prometheus_rule(service, slos),
        ),
    ];
    for (relative, artifact, generated) in files {
        let command = format!("cargo run -q -p {service} -- slo {artifact} > deploy/{relative}");
        let path = deploy.join(&relative);
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!("{}: {error}; generate it with `{command}`", path.display())
        });
        assert!(
            committed == generated,
            "deploy/{relative} is stale; regenerate it with `{command}`"
        );
    }
}

/// Runs `promtool` with `args` and `input` on its standard input, failing the test with its
/// output when it fails (skipped locally, a failure under CI, when promtool is missing).
pub fn promtool(args: &[&str], input: &[u8]) {
    let Some(output) = run_tool("promtool", args, input) else {
        return;
    };
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
