//! deploy/'s monitoring, end to end on loopback: the four service binaries, and a real
//! Prometheus, blackbox exporter and Alertmanager fed the committed `deploy/prometheus/` files
//! (addresses rewritten, nothing else). Every target must be up, every probe succeed, every rule
//! evaluate, and an alert must travel Prometheus → Alertmanager → webhook.
//!
//! The tools come from Debian's `prometheus`, `prometheus-blackbox-exporter` and
//! `prometheus-alertmanager` packages, which `.ci/run` installs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use monitoring_e2e::Addresses;
use platform::testing::{ServiceProcess, eventually_within, require, run_tool, temp_path};
use serde_json::Value;

/// The four services: name, API port and admin port in `deploy/` (compose and Kubernetes).
const SERVICES: [(&str, u16, u16); 4] = [
    ("hello", 8081, 9081),
    ("messages", 8082, 9082),
    ("notes", 8083, 9083),
    ("chat", 8084, 9084),
];

/// Time Prometheus gets to scrape, evaluate and send (it does each every second here).
const PATIENCE: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The service binary `name` next to this test's target directory, built if a narrower
/// `cargo test -p monitoring-e2e` did not build it (a workspace run always has).
fn binary(name: &str) -> String {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let path = profile_dir.join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", name, "--bin", name])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build -p {name} failed");
    }
    path.display().to_string()
}

/// An external program, killed when dropped; its stderr goes to `<dir>/<program>.log`.
struct Tool {
    child: Child,
}

impl Tool {
    /// `None` (after [`require`]) when `program` is not installed.
    fn start(program: &str, args: &[String], dir: &Path) -> Option<Tool> {
        let log = std::fs::File::create(dir.join(format!("{program}.log"))).expect("log file");
        match Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
        {
            Ok(child) => Some(Tool { child }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                require(program, false);
                None
            }
            Err(error) => panic!("{program} cannot start: {error}"),
        }
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on right now (for tools that cannot report a port 0 bind).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Notifications the webhook received, as (receiver path, body).
type Received = Arc<Mutex<Vec<(String, Value)>>>;

/// The stand-in for the pager, the ticket system and the dead man's switch.
async fn webhook() -> (String, Received) {
    use axum::extract::{Path, State};
    let received = Received::default();
    let app = axum::Router::new()
        .route(
            "/{receiver}",
            axum::routing::post(
                |State(received): State<Received>,
                 Path(receiver): Path<String>,
                 axum::Json(body): axum::Json<Value>| async move {
                    if let Ok(mut received) = received.lock() {
                        received.push((receiver, body));
                    }
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the webhook binds");
    let address = listener.local_addr().expect("a bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received)
}

/// `GET` a Prometheus API path; `Value::Null` while it does not answer yet.
async fn api(client: &reqwest::Client, url: String) -> Value {
    match client.get(url).send().await {
        Ok(response) => response.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// How many rules the committed rule files hold.
fn committed_rule_count(rules: &Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(rules).expect("deploy/prometheus/rules") {
        let path = entry.expect("a directory entry").path();
        let text = std::fs::read_to_string(&path).expect("a rule file");
        let file: serde_json::Value = yaml_to_json(&text);
        for group in file["groups"].as_array().into_iter().flatten() {
            count += group["rules"].as_array().map_or(0, Vec::len);
        }
    }
    count
}

fn yaml_to_json(text: &str) -> Value {
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).expect("valid YAML");
    serde_json::to_value(yaml).expect("YAML that maps to JSON")
}

/// Prometheus on the committed `prometheus.yml` (addresses rewritten, scrapes and evaluations
/// every second, the committed rules) and Alertmanager on `alertmanager_yml`, on free ports with
/// their files and logs in `dir`. Prometheus starts once Alertmanager and every port in
/// `ready_first` answer `/-/ready`. `None` when either program is not installed.
struct Monitoring {
    _alertmanager: Tool,
    _prometheus: Tool,
    prometheus_port: u16,
}

impl Monitoring {
    async fn start(
        dir: &Path,
        mut addresses: Addresses,
        alertmanager_yml: String,
        ready_first: &[u16],
    ) -> Option<Monitoring> {
        let deploy = repo().join("deploy/prometheus");
        let (prometheus_port, alertmanager_port) = (free_port(), free_port());
        addresses.insert("localhost:9090", format!("127.0.0.1:{prometheus_port}"));
        addresses.insert(
            "alertmanager:9093",
            format!("127.0.0.1:{alertmanager_port}"),
        );
        let committed =
            std::fs::read_to_string(deploy.join("prometheus.yml")).expect("committed file");
        let prometheus_yml =
            monitoring_e2e::prometheus_config(&committed, &addresses, &deploy.join("rules"), "1s")
                .expect("prometheus.yml rewrites");
        let listen = |port: u16| format!("--web.listen-address=127.0.0.1:{port}");
        let alertmanager = Tool::start(
            "prometheus-alertmanager",
            &[
                config_file(dir, "alertmanager.yml", alertmanager_yml),
                listen(alertmanager_port),
                format!("--storage.path={}", dir.join("alertmanager").display()),
                "--cluster.listen-address=".to_owned(),
            ],
            dir,
        )?;
        // Prometheus learns its Alertmanager through discovery, which syncs every 5 s; an alert
        // that fired before then is sent again only after the resend delay, which the test
        // shortens along with the intervals.
        let client = reqwest::Client::new();
        for port in ready_first.iter().chain([&alertmanager_port]) {
            let ready = format!("http://127.0.0.1:{port}/-/ready");
            eventually_within(PATIENCE, || async {
                let response = client.get(&ready).send().await;
                response.is_ok_and(|response| response.status().is_success())
            })
            .await;
        }
        let prometheus = Tool::start(
            "prometheus",
            &[
                config_file(dir, "prometheus.yml", prometheus_yml),
                listen(prometheus_port),
                format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
                "--rules.alert.resend-delay=1s".to_owned(),
            ],
            dir,
        )?;
        Some(Monitoring {
            _alertmanager: alertmanager,
            _prometheus: prometheus,
            prometheus_port,
        })
    }

    /// The URL of `path` on Prometheus.
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.prometheus_port)
    }
}

/// Writes `text` to `dir/file` and returns the `--config.file=` argument that names it.
fn config_file(dir: &Path, file: &str, text: String) -> String {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("scratch file");
    format!("--config.file={}", path.display())
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_blackbox_and_alertmanager_watch_the_four_services() {
    let deploy = repo().join("deploy/prometheus");
    let dir = temp_path("stack");
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let tls_dir = dir.join("messages-tls");
    let tls_setting = tls_dir.display().to_string();

    let services: Vec<(&str, u16, u16, ServiceProcess)> = SERVICES
        .iter()
        .map(|&(name, api, admin)| {
            let mut settings = vec![("storage.url", "memory:")];
            if name == "messages" {
                settings.push(("tls.self_signed_dir", tls_setting.as_str()));
            }
            let process = ServiceProcess::start(&binary(name), name, &settings);
            (name, api, admin, process)
        })
        .collect();

    let (webhook_url, received) = webhook().await;
    let blackbox_port = free_port();
    let mut addresses = Addresses::default();
    for (name, api, admin, process) in &services {
        addresses.insert(format!("{name}:{api}"), process.api.to_string());
        addresses.insert(format!("{name}:{admin}"), process.admin.to_string());
    }
    addresses.insert("blackbox:9115", format!("127.0.0.1:{blackbox_port}"));
    let read = |file: &str| std::fs::read_to_string(deploy.join(file)).expect("committed file");
    let Some(_blackbox) = Tool::start(
        "prometheus-blackbox-exporter",
        &[
            config_file(
                &dir,
                "blackbox.yml",
                monitoring_e2e::blackbox_config(&read("blackbox.yml"), &tls_dir),
            ),
            format!("--web.listen-address=127.0.0.1:{blackbox_port}"),
        ],
        &dir,
    ) else {
        return;
    };
    let alertmanager_yml =
        monitoring_e2e::alertmanager_config(&read("alertmanager.yml"), &webhook_url);
    let Some(monitoring) =
        Monitoring::start(&dir, addresses, alertmanager_yml, &[blackbox_port]).await
    else {
        return;
    };
    let client = reqwest::Client::new();
    let prometheus = |path: &str| monitoring.url(path);
    let logs = dir.display();

    // Every job of the committed config has its targets, and all are up.
    let expected_jobs: BTreeSet<&str> = [
        "hello",
        "messages",
        "notes",
        "chat",
        "blackbox-http",
        "blackbox-https",
        "prometheus",
        "alertmanager",
        "blackbox",
    ]
    .into();
    eventually_within(PATIENCE, || async {
        let targets = api(&client, prometheus("/api/v1/targets")).await;
        let active = targets["data"]["activeTargets"].as_array().cloned();
        let active = active.unwrap_or_default();
        let jobs: BTreeSet<&str> = active
            .iter()
            .filter_map(|target| target["labels"]["job"].as_str())
            .collect();
        jobs.iter().eq(expected_jobs.iter()) && active.iter().all(|t| t["health"] == "up")
    })
    .await;

    // The probes of `/` and `/livez` (messages' over HTTPS, checked against its certificate)
    // succeed: `up` only says the exporter answered.
    eventually_within(PATIENCE, || async {
        let result = api(&client, prometheus("/api/v1/query?query=probe_success")).await;
        let series = result["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        series.len() == 2 * SERVICES.len() && series.iter().all(|s| s["value"][1] == "1")
    })
    .await;
    let probed = api(&client, prometheus("/api/v1/query?query=probe_success")).await;
    let instances: BTreeSet<String> = probed["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|series| series["metric"]["instance"].as_str().map(str::to_owned))
        .collect();
    for (name, _, _, process) in &services {
        let scheme = if *name == "messages" { "https" } else { "http" };
        for path in ["/", "/livez"] {
            let url = format!("{scheme}://{}{path}", process.api);
            assert!(
                instances.contains(&url),
                "{url} is not probed: {instances:?}"
            );
        }
    }

    // Every rule of every committed file is loaded and has evaluated without an error.
    let committed = committed_rule_count(&deploy.join("rules"));
    eventually_within(PATIENCE, || async {
        let rules = api(&client, prometheus("/api/v1/rules")).await;
        let loaded: Vec<Value> = rules["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        loaded.len() == committed && loaded.iter().all(|rule| rule["health"] == "ok")
    })
    .await;
    let rules = api(&client, prometheus("/api/v1/rules")).await;
    for group in rules["data"]["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            assert_eq!(rule["health"], "ok", "{rule} (logs in {logs})");
            assert!(rule.get("lastError").is_none_or(|e| e == ""), "{rule}");
        }
    }

    // The always-firing Watchdog reaches the heartbeat receiver through the routing tree.
    eventually_within(PATIENCE, || async {
        let received = received.lock().map(|r| r.clone()).unwrap_or_default();
        received.iter().any(|(receiver, body)| {
            receiver == "heartbeat"
                && body["status"] == "firing"
                && body["alerts"][0]["labels"]["alertname"] == "Watchdog"
        })
    })
    .await;
    let received = received.lock().map(|r| r.clone()).unwrap_or_default();
    for (receiver, body) in &received {
        for alert in body["alerts"].as_array().into_iter().flatten() {
            let name = &alert["labels"]["alertname"];
            assert!(
                receiver == "heartbeat" || name != "Watchdog",
                "Watchdog was routed to {receiver}"
            );
        }
    }
    drop(services);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The routing tree sends pages and tickets where `alertmanager.yml` says, checked with the
/// real Alertmanager's `amtool`.
#[test]
fn alerts_route_to_page_ticket_and_heartbeat() {
    let config = format!(
        "--config.file={}",
        repo().join("deploy/prometheus/alertmanager.yml").display()
    );
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "alertname=HelloAvailabilityBurnRatePage1h",
                "severity=page",
                "service=hello",
            ],
            "page",
        ),
        (
            &[
                "alertname=ChatDeliveredBurnRateTicket1d",
                "severity=ticket",
                "service=chat",
            ],
            "ticket",
        ),
        (&["alertname=Watchdog", "severity=none"], "heartbeat"),
        (&["alertname=SomethingUnlabelled"], "ticket"),
    ];
    for (labels, receiver) in cases {
        let mut args = vec!["config", "routes", "test", config.as_str()];
        args.extend_from_slice(labels);
        let Some(output) = run_tool("amtool", &args, b"") else {
            return;
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "amtool {args:?}: {stdout}");
        assert_eq!(stdout.trim(), receiver, "{labels:?}");
    }
}

/// The configuration baked into the images and the one mounted in Kubernetes load in the real
/// binaries and listen on every interface, at the ports the manifests and probes expect.
#[test]
fn image_and_cluster_configs_load() {
    for (name, api, admin) in SERVICES {
        let binary = binary(name);
        for file in [
            format!("deploy/docker/config/{name}.toml"),
            format!("deploy/kubernetes/base/{name}/config.toml"),
        ] {
            let output = Command::new(&binary)
                .args(["--config", &repo().join(&file).display().to_string()])
                .arg("check-config")
                .env_clear()
                .output()
                .expect("the binary runs");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{file}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            for port in [api, admin] {
                let listen = format!("listen = \"0.0.0.0:{port}\"");
                assert!(stdout.contains(&listen), "{file} lacks {listen}:\n{stdout}");
            }
        }
    }
}

/// What hello answered the outage test's load, by kind.
#[derive(Debug, Default)]
struct Answers {
    ok: u64,
    /// `503` `application/problem+json` with `Retry-After`: the fast refusal the SLO counts.
    refused: u64,
    /// Anything else: a connection error, another status, a 503 that is not a problem.
    other: Vec<String>,
}

/// Reads `GET url` answers into `answers` until `running` turns false; `pause` between
/// requests (zero floods).
fn load(
    client: reqwest::Client,
    url: String,
    answers: Arc<Mutex<Answers>>,
    pause: Arc<Mutex<Duration>>,
    running: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while running.load(std::sync::atomic::Ordering::Relaxed) {
            let outcome = match client.get(&url).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let problem = response
                        .headers()
                        .get("content-type")
                        .is_some_and(|value| value == "application/problem+json");
                    let retry = response.headers().contains_key("retry-after");
                    match status {
                        200 => Ok(true),
                        503 if problem && retry => Ok(false),
                        _ => Err(format!("status {status}, problem {problem}")),
                    }
                }
                Err(error) => Err(format!("no answer: {error}")),
            };
            if let Ok(mut answers) = answers.lock() {
                match outcome {
                    Ok(true) => answers.ok += 1,
                    Ok(false) => answers.refused += 1,
                    Err(other) => answers.other.push(other),
                }
            }
            let pause = pause.lock().map(|pause| *pause).unwrap_or_default();
            if !pause.is_zero() {
                // Pacing the load generator, not waiting for an event.
                tokio::time::sleep(pause).await;
            }
        }
    })
}

/// The alerts Prometheus holds now, as (name, state, labels).
async fn prometheus_alerts(client: &reqwest::Client, url: &str) -> Vec<(String, String, Value)> {
    let body = api(client, url.to_owned()).await;
    body["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|alert| {
            (
                alert["labels"]["alertname"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                alert["state"].as_str().unwrap_or("").to_owned(),
                alert["labels"].clone(),
            )
        })
        .collect()
}

/// Whether the webhook got a `status` notification of `alert` on `receiver`.
fn notified(received: &Received, receiver: &str, status: &str, alert: &str) -> bool {
    let received = received.lock().map(|r| r.clone()).unwrap_or_default();
    received.iter().any(|(to, body)| {
        to == receiver
            && body["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["labels"]["alertname"] == alert && a["status"] == status)
    })
}

/// A PostgreSQL outage under load, seen the way an operator sees it. hello runs on a private
/// PostgreSQL with the committed rules in a real Prometheus and Alertmanager (intervals and
/// Alertmanager's waits cut to a second). PostgreSQL stops: hello stays ready and in the scrape,
/// answers every request with a `503` problem (never a refused connection), the dependency
/// alert goes pending for `postgres`, and the availability page fires and reaches the `page`
/// receiver. PostgreSQL starts again: hello serves by itself, and once good traffic has diluted
/// the 5-minute window the page resolves in Prometheus and Alertmanager says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_outage_burns_the_budget_pages_and_resolves() {
    use platform::testing::{Readiness, Server, ServerProcess};
    use std::sync::atomic::{AtomicBool, Ordering};

    const PAGE: &str = "HelloAvailabilityBurnRatePage1h";
    let Some(mut postgres) = ServerProcess::start_new(Server::Postgres).await else {
        return;
    };
    let deploy = repo().join("deploy/prometheus");
    let dir = temp_path("outage");
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let url = postgres.url();
    let hello = ServiceProcess::start(
        &binary("hello"),
        "hello",
        &[
            ("storage.url", url.as_str()),
            ("storage.connect_timeout", "300ms"),
            ("storage.operation_timeout", "500ms"),
            ("health.check_interval", "100ms"),
            ("health.check_timeout", "300ms"),
        ],
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client");
    let base = format!("http://{}", hello.api);
    let put = client
        .put(format!("{base}/hello/ada"))
        .json(&serde_json::json!({ "dateOfBirth": "1990-06-16" }))
        .send()
        .await
        .expect("hello answers");
    assert_eq!(put.status(), 204);

    let (webhook_url, received) = webhook().await;
    let mut addresses = Addresses::default();
    addresses.insert("hello:8081", hello.api.to_string());
    addresses.insert("hello:9081", hello.admin.to_string());
    let committed = std::fs::read_to_string(deploy.join("alertmanager.yml")).expect("committed");
    let alertmanager_yml =
        monitoring_e2e::alertmanager_config_without_waits(&committed, &webhook_url);
    let Some(monitoring) = Monitoring::start(&dir, addresses, alertmanager_yml, &[]).await else {
        return;
    };
    let prometheus = |path: &str| monitoring.url(path);
    let alerts_url = prometheus("/api/v1/alerts");
    let query = |promql: &str| {
        let url = prometheus("/api/v1/query");
        let client = client.clone();
        let promql = promql.to_owned();
        async move {
            match client.get(url).query(&[("query", promql)]).send().await {
                Ok(response) => response.json::<Value>().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            }
        }
    };

    // A light, steady load: 50 requests a second, so that the outage's refusals are a large
    // share of the 5-minute window.
    let answers = Arc::new(Mutex::new(Answers::default()));
    let pause = Arc::new(Mutex::new(Duration::from_millis(20)));
    let running = Arc::new(AtomicBool::new(true));
    let mut loaders = vec![load(
        client.clone(),
        format!("{base}/hello/ada"),
        answers.clone(),
        pause.clone(),
        running.clone(),
    )];
    // Prometheus scrapes hello and records its error ratio: 0 while all is well.
    eventually_within(PATIENCE, || async {
        let ratio =
            query("slo:sli_error:ratio_rate5m{service=\"hello\",slo=\"availability\"}").await;
        ratio["data"]["result"][0]["value"][1] == "0"
    })
    .await;

    postgres.stop().await;
    let admin_readyz = format!("http://{}/readyz", hello.admin);
    eventually_within(PATIENCE, || async {
        Readiness::fetch(&client, &admin_readyz)
            .await
            .is_some_and(|readiness| readiness.serving_through_outage())
    })
    .await;
    // The page fires in Prometheus and reaches the pager; the dependency alert names the cause
    // (pending: it waits 2 minutes before it fires).
    eventually_within(PATIENCE, || async {
        let alerts = prometheus_alerts(&client, &alerts_url).await;
        alerts
            .iter()
            .any(|(name, state, _)| name == PAGE && state == "firing")
    })
    .await;
    let alerts = prometheus_alerts(&client, &alerts_url).await;
    assert!(
        alerts
            .iter()
            .any(|(name, _, labels)| name == "HelloDependencyFailing"
                && labels["check"] == "postgres"),
        "{alerts:?}"
    );
    eventually_within(PATIENCE, || async {
        notified(&received, "page", "firing", PAGE)
    })
    .await;
    let up = query("up{job=\"hello\"}").await;
    assert_eq!(
        up["data"]["result"][0]["value"][1], "1",
        "hello stays scraped: {up}"
    );
    let refused_during_outage = answers.lock().map(|a| a.refused).unwrap_or_default();
    assert!(
        refused_during_outage >= 10,
        "{refused_during_outage} refusals"
    );

    // PostgreSQL returns; hello serves by itself; a flood of good answers dilutes the 5-minute
    // window below the page's threshold, and the page resolves.
    postgres.start().await;
    eventually_within(PATIENCE, || async {
        client
            .get(format!("{base}/hello/ada"))
            .send()
            .await
            .is_ok_and(|response| response.status() == 200)
    })
    .await;
    if let Ok(mut pause) = pause.lock() {
        *pause = Duration::ZERO;
    }
    for _ in 0..7 {
        loaders.push(load(
            client.clone(),
            format!("{base}/hello/ada"),
            answers.clone(),
            pause.clone(),
            running.clone(),
        ));
    }
    eventually_within(2 * PATIENCE, || async {
        let alerts = prometheus_alerts(&client, &alerts_url).await;
        !alerts.iter().any(|(name, _, _)| name == PAGE)
    })
    .await;
    eventually_within(PATIENCE, || async {
        notified(&received, "page", "resolved", PAGE)
    })
    .await;
    running.store(false, Ordering::Relaxed);
    for loader in loaders {
        loader.await.expect("the load ran to the end");
    }
    let answers = answers
        .lock()
        .map(|mut a| std::mem::take(&mut *a))
        .unwrap_or_default();
    assert!(
        answers.other.is_empty(),
        "every answer was a 200 or a 503 problem; also got {:?} (logs in {})",
        &answers.other[..answers.other.len().min(5)],
        dir.display()
    );
    assert!(answers.ok > answers.refused, "{answers:?}");
    eventually_within(PATIENCE, || async {
        Readiness::fetch(&client, &admin_readyz)
            .await
            .is_some_and(|readiness| readiness.passing())
    })
    .await;
    drop(hello);
    let _ = std::fs::remove_dir_all(&dir);
}
