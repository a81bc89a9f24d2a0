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

use platform::testing::{ServiceProcess, eventually_within, require, run_tool, temp_path};
use serde_json::Value;
use stack::Addresses;

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
/// `cargo test -p stack` did not build it (a workspace run always has).
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
    let (prometheus_port, alertmanager_port, blackbox_port) =
        (free_port(), free_port(), free_port());
    let mut addresses = Addresses::default();
    for (name, api, admin, process) in &services {
        addresses.insert(format!("{name}:{api}"), process.api.to_string());
        addresses.insert(format!("{name}:{admin}"), process.admin.to_string());
    }
    addresses.insert("localhost:9090", format!("127.0.0.1:{prometheus_port}"));
    addresses.insert(
        "alertmanager:9093",
        format!("127.0.0.1:{alertmanager_port}"),
    );
    addresses.insert("blackbox:9115", format!("127.0.0.1:{blackbox_port}"));

    let read = |file: &str| std::fs::read_to_string(deploy.join(file)).expect("committed file");
    let prometheus_yml = stack::prometheus_config(
        &read("prometheus.yml"),
        &addresses,
        &deploy.join("rules"),
        "1s",
    )
    .expect("prometheus.yml rewrites");
    let write = |file: &str, text: String| {
        let path = dir.join(file);
        std::fs::write(&path, text).expect("scratch file");
        format!("--config.file={}", path.display())
    };
    let prometheus_config = write("prometheus.yml", prometheus_yml);
    let alertmanager_config = write(
        "alertmanager.yml",
        stack::alertmanager_config(&read("alertmanager.yml"), &webhook_url),
    );
    let blackbox_config = write(
        "blackbox.yml",
        stack::blackbox_config(&read("blackbox.yml"), &tls_dir),
    );
    let listen = |port: u16| format!("--web.listen-address=127.0.0.1:{port}");

    let Some(_blackbox) = Tool::start(
        "prometheus-blackbox-exporter",
        &[blackbox_config, listen(blackbox_port)],
        &dir,
    ) else {
        return;
    };
    let Some(_alertmanager) = Tool::start(
        "prometheus-alertmanager",
        &[
            alertmanager_config,
            listen(alertmanager_port),
            format!("--storage.path={}", dir.join("alertmanager").display()),
            "--cluster.listen-address=".to_owned(),
        ],
        &dir,
    ) else {
        return;
    };
    // Prometheus learns its Alertmanager through discovery, which syncs every 5 s; an alert that
    // fired before then is sent again only after the resend delay, which the test shortens
    // along with the intervals.
    let client = reqwest::Client::new();
    for port in [alertmanager_port, blackbox_port] {
        let ready = format!("http://127.0.0.1:{port}/-/ready");
        eventually_within(PATIENCE, || async {
            let response = client.get(&ready).send().await;
            response.is_ok_and(|response| response.status().is_success())
        })
        .await;
    }
    let Some(_prometheus) = Tool::start(
        "prometheus",
        &[
            prometheus_config,
            listen(prometheus_port),
            format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
            "--rules.alert.resend-delay=1s".to_owned(),
        ],
        &dir,
    ) else {
        return;
    };
    let prometheus = |path: &str| format!("http://127.0.0.1:{prometheus_port}{path}");
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
