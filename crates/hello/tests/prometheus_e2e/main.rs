//! The generated rules against a real Prometheus: it scrapes a running hello on loopback, the
//! test drives good and failing traffic, and Prometheus' HTTP API must show recording rules that
//! evaluate without errors to the error ratios that traffic implies.
//!
//! Needs `prometheus` on the PATH (a skip locally, a failure under CI) and `TEST_REDIS_URL`
//! (failures come from cutting hello off Redis through a [`FaultProxy`]). The metrics registry is
//! process-wide, so this test is its own test binary: the expected ratios need a process whose
//! only traffic is this test's, under `cargo test` as under `cargo nextest`.

// A failed unwrap in a test helper is the test failing, loudly, where it happened.
#![allow(clippy::unwrap_used)]

// Shared with the `api` binary, which uses all of it; this one uses a part.
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use platform::testing::{Backend, FaultProxy, temp_path};
use serde_json::Value;
use time::macros::date;

use crate::helpers::{HelloApp, spawn_with, unique_username};

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/prometheus/rules/hello.yml"
);
const GOOD: usize = 300;
const BAD: usize = 100;

/// A running Prometheus, killed (and its directory removed) when dropped, even on a panic.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    base: String,
    client: reqwest::Client,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Prometheus {
    /// Starts Prometheus on a free loopback port, scraping `target` (`host:port`) as job `hello`
    /// every second with the generated rules, and waits until it is ready.
    async fn start(target: &str) -> Prometheus {
        let dir = temp_path("dir");
        std::fs::create_dir_all(&dir).unwrap();
        let rules = Path::new(RULES)
            .canonicalize()
            .expect("generated rules exist");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules:?}\n\
             scrape_configs:\n  - job_name: hello\n    metrics_path: /metrics\n    \
             static_configs:\n      - targets: [{target:?}]\n",
            rules = rules.display().to_string(),
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        let prometheus = Prometheus {
            child,
            dir,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
        };
        let ready = format!("{}/-/ready", prometheus.base);
        prometheus
            .eventually("Prometheus is ready", || async {
                matches!(prometheus.client.get(&ready).send().await, Ok(r) if r.status() == 200)
            })
            .await;
        prometheus
    }

    /// GET `path` of the HTTP API, asserting `"status": "success"`; returns `data`.
    async fn api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let url = url::Url::parse_with_params(&format!("{}{path}", self.base), params).unwrap();
        let body: Value = self
            .client
            .get(url)
            .send()
            .await
            .expect("Prometheus answers")
            .json()
            .await
            .expect("Prometheus answers JSON");
        assert_eq!(body["status"], "success", "{path} {params:?}: {body}");
        body["data"].clone()
    }

    /// The instant vector of `query`, as `(labels, value)` pairs.
    async fn query(&self, query: &str) -> Vec<(Value, f64)> {
        let data = self.api("/api/v1/query", &[("query", query)]).await;
        assert_eq!(data["resultType"], "vector", "{query}: {data}");
        data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|sample| {
                let value = sample["value"][1].as_str().unwrap().parse().unwrap();
                (sample["metric"].clone(), value)
            })
            .collect()
    }

    /// The single value of `query`, or `None` when its result is empty.
    async fn scalar(&self, query: &str) -> Option<f64> {
        let result = self.query(query).await;
        assert!(
            result.len() <= 1,
            "{query} has one series at most: {result:?}"
        );
        result.first().map(|(_, value)| *value)
    }

    /// Polls `condition` every 100 ms for at most 30 s; fails with Prometheus' log otherwise.
    async fn eventually<F, Fut>(&self, what: &str, condition: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !condition().await {
            if tokio::time::Instant::now() >= deadline {
                let log =
                    std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
                panic!("not within 30 s: {what}\nPrometheus log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Whether `prometheus` can run; when it cannot, fails under CI and prints a skip otherwise.
fn prometheus_installed() -> bool {
    let runs = Command::new("prometheus")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    platform::testing::require("prometheus", runs)
}

/// Sends `count` GETs for `user` at once and returns their statuses.
async fn gets(app: &HelloApp, user: &str, count: usize) -> Vec<u16> {
    let requests = (0..count).map(|_| async { app.get_birthday(user).await.status().as_u16() });
    futures::future::join_all(requests).await
}

/// The sum of every `http_server_request_duration_seconds_count` series hello exposes now.
async fn requests_counted(app: &HelloApp) -> f64 {
    let text = app.admin_get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|line| line.starts_with("http_server_request_duration_seconds_count{"))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_rules_give_the_error_ratios_of_real_traffic() {
    if !prometheus_installed() {
        return;
    }
    let Some(url) = Backend::Redis.storage_url("hello prometheus e2e") else {
        return;
    };
    let (proxy, via_proxy) = FaultProxy::in_front_of(&url).await;
    let app = spawn_with(
        &via_proxy,
        date!(2024 - 06 - 15),
        &[
            ("storage.connect_timeout", "300ms"),
            ("storage.operation_timeout", "500ms"),
        ],
    )
    .await;
    let user = unique_username();

    // Before the first scrape, both the good and the 5xx series exist: every series then has
    // samples at the same scrapes, so rate()'s extrapolation stretches them all alike.
    assert_eq!(app.put_date(&user, "1990-06-16").await.status(), 204);
    assert!(gets(&app, &user, 3).await.iter().all(|s| *s == 200));
    proxy.cut().await;
    assert!(gets(&app, &user, 2).await.iter().all(|s| *s == 503));
    proxy.restore();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.get_birthday(&user).await.status() != 200 {
        assert!(tokio::time::Instant::now() < deadline, "Redis is back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let admin = app.app.admin_address.trim_start_matches("http://");
    let prometheus = Prometheus::start(admin).await;
    prometheus
        .eventually("hello is scraped, twice", || async {
            prometheus.scalar(r#"up{job="hello"}"#).await == Some(1.0)
                && prometheus
                    .scalar(r#"count_over_time(up{job="hello"}[1m])"#)
                    .await
                    .is_some_and(|scrapes| scrapes >= 2.0)
        })
        .await;

    // The traffic the 5m windows see: GOOD successes, then BAD failures with Redis cut off.
    assert!(gets(&app, &user, GOOD).await.iter().all(|s| *s == 200));
    proxy.cut().await;
    let statuses = gets(&app, &user, BAD).await;
    proxy.restore();
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");

    // Prometheus has scraped everything sent, and evaluated the rules after that scrape.
    let sent = requests_counted(&app).await;
    prometheus
        .eventually("Prometheus sees every request sent", || async {
            let seen = prometheus
                .scalar(r#"sum(http_server_request_duration_seconds_count{job="hello"})"#)
                .await;
            seen == Some(sent)
        })
        .await;
    let scraped = prometheus
        .scalar(r#"timestamp(up{job="hello"})"#)
        .await
        .unwrap();
    prometheus
        .eventually("the rules are evaluated after the last scrape", || async {
            let evaluated = prometheus
                .query(r#"timestamp(slo:sli_error:ratio_rate5m{service="hello"})"#)
                .await;
            evaluated.len() == 2 && evaluated.iter().all(|(_, at)| *at > scraped + 1.0)
        })
        .await;

    // Between its first and last samples the windows hold exactly BAD failures out of
    // GOOD + BAD requests: 0.25. rate() extrapolates each series' increase to the window's
    // edges by up to half a scrape interval, and stops earlier where a series would reach
    // zero; that cut differs slightly between the good and the bad series (their first
    // values differ), so the ratio may drift by a few percent of itself. 0.18..0.32 keeps a
    // wide margin for that, while failing a rule that divides the wrong way (0.75 or 4),
    // counts nothing (0) or counts everything (1).
    let availability = prometheus
        .scalar(r#"slo:sli_error:ratio_rate5m{service="hello",slo="availability"}"#)
        .await
        .expect("the availability ratio is recorded");
    let expected = BAD as f64 / (GOOD + BAD) as f64;
    assert!(
        (0.18..=0.32).contains(&availability),
        "availability error ratio {availability}, expected about {expected}"
    );
    assert!(availability > 0.0 && availability < 0.5);

    // Whether a 503 from a cut backend beats 100 ms is up to the timing, so only the bounds.
    let latency = prometheus
        .scalar(r#"slo:sli_error:ratio_rate5m{service="hello",slo="latency"}"#)
        .await
        .expect("the latency ratio is recorded");
    assert!(
        (0.0..=1.0).contains(&latency),
        "latency error ratio {latency}"
    );

    // Every group evaluates without errors, and the alerts are loaded.
    let rules = prometheus.api("/api/v1/rules", &[]).await;
    let groups = rules["groups"].as_array().unwrap();
    // One group per SLO, the probe SLI's and the dependency alerts'.
    let mut names: Vec<_> = groups
        .iter()
        .map(|group| group["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "hello-dependencies",
            "hello-slo-availability",
            "hello-slo-availability-probe",
            "hello-slo-latency"
        ],
        "{rules}"
    );
    let mut alerts = Vec::new();
    for group in groups {
        for rule in group["rules"].as_array().unwrap() {
            assert_eq!(rule["health"], "ok", "{rule}");
            if rule["type"] == "alerting" {
                alerts.push(rule["name"].as_str().unwrap().to_owned());
            }
        }
    }
    for alert in [
        "HelloAvailabilityBurnRatePage1h",
        "HelloLatencyBurnRatePage1h",
        "HelloAvailabilitySLIMetricsAbsent",
        "HelloAvailabilityProbeBurnRatePage1h",
        "HelloDependencyFailing",
    ] {
        assert!(
            alerts.iter().any(|name| name == alert),
            "{alert} in {alerts:?}"
        );
    }
}
