//! The generated SLO views: the dashboard's PromQL is valid (promtool) and reads only metrics the
//! platform exports or the generated rules record; OpenSLO parses as YAML with one document per SLO; and `GET /slo` counts a
//! real server's requests, 5xx included.

// A failed unwrap in a test helper is the test failing, loudly, where it happened.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use platform::Service;
use platform::metrics::names;
use platform::slo::{Routes, Sli, Slo, dashboard, openslo};
use platform::testing::{TestApp, temp_path};
use serde_json::Value;
use tokio::sync::Notify;

/// One SLO of every kind, with route filters, so every query shape is generated.
fn slos() -> Vec<Slo> {
    vec![
        Slo::new(
            "availability",
            "Requests answered without a server error.",
            0.999,
            Sli::availability(),
        ),
        Slo::new(
            "latency",
            "Requests within 100 ms.",
            0.99,
            Sli::latency(0.1),
        ),
        Slo::new(
            "hello_availability",
            "Greetings answered without a server error.",
            0.995,
            Sli::Availability {
                routes: Routes::Only(&["/hello/{username}", "/a.b"]),
            },
        ),
        Slo::new(
            "delivery",
            "Messages delivered.",
            0.99,
            Sli::Ratio {
                bad: "chat_messages_total{outcome=\"failed\"}",
                total: "chat_messages_total",
            },
        ),
    ]
}

/// Runs `promtool check rules` on every expression as a recording rule; panics with promtool's
/// output when one is invalid.
fn promtool_check(exprs: &[String]) {
    let mut rules = String::from("groups:\n  - name: check\n    rules:\n");
    for (n, expr) in exprs.iter().enumerate() {
        // JSON string literals are YAML double-quoted scalars.
        let expr = expr.replace("$__rate_interval", "5m");
        rules.push_str(&format!(
            "      - record: check:expr_{n}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let path = temp_path("yml");
    std::fs::write(&path, &rules).unwrap();
    let output =
        platform::testing::run_tool("promtool", &["check", "rules", path.to_str().unwrap()], b"");
    let _ = std::fs::remove_file(&path);
    let Some(output) = output else { return };
    assert!(
        output.status.success(),
        "promtool rejected an expression:\n{}\n{}\nrules:\n{rules}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "promtool saw every rule: {stdout}"
    );
}

#[test]
fn every_dashboard_expression_is_valid_promql() {
    let rendered = dashboard::render("hello", &slos());
    let exprs = dashboard::expressions(&rendered).unwrap();
    // 4 SLOs × (budget and SLI stats + SLI and objective + 7 burn rates), the probe SLI of the
    // first availability SLO (2 stats + 7 burn rates), 4 RED + storage + CPU + memory.
    assert_eq!(exprs.len(), 4 * 11 + 9 + 7, "{exprs:#?}");
    for expr in &exprs {
        assert!(!expr.contains("datasource"), "{expr}");
        if expr.starts_with("vector(") {
            continue;
        }
        assert!(
            expr.contains("job=\"hello\"") || expr.contains("service=\"hello\""),
            "every query selects the service: {expr}"
        );
        assert!(
            expr.contains("namespace=~\"$namespace\""),
            "every query follows the namespace variable: {expr}"
        );
    }
    promtool_check(&exprs);
}

#[test]
fn every_overview_expression_is_valid_promql_and_scoped() {
    let slos = slos();
    let rendered = dashboard::overview(&[("hello", &slos), ("chat", &slos[..1])]);
    let exprs = dashboard::expressions(&rendered).unwrap();
    // (4 + 1) budget stats, and per service a request rate and a 5xx ratio.
    assert_eq!(exprs.len(), 5 + 2 * 2, "{exprs:#?}");
    for expr in &exprs {
        assert!(expr.contains("namespace=~\"$namespace\""), "{expr}");
    }
    let dashboard: Value = serde_json::from_str(&rendered).unwrap();
    assert_eq!(
        dashboard["templating"]["list"][1]["definition"],
        "label_values(up{job=~\"hello|chat\"}, namespace)"
    );
    promtool_check(&exprs);
}

#[test]
fn the_dashboard_is_current_grafana_json_on_a_datasource_variable() {
    let rendered = dashboard::render("hello", &slos());
    let dashboard: Value = serde_json::from_str(&rendered).unwrap();
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 39);
    assert_eq!(dashboard["uid"], "slo-hello");
    assert_eq!(dashboard["templating"]["list"][0]["name"], "datasource");
    assert_eq!(dashboard["templating"]["list"][0]["query"], "prometheus");
    let namespace = &dashboard["templating"]["list"][1];
    assert_eq!(namespace["name"], "namespace");
    assert_eq!(namespace["includeAll"], true);
    assert_eq!(
        namespace["allValue"], ".*",
        "All also matches series without the label"
    );
    assert_eq!(
        namespace["definition"],
        "label_values(up{job=\"hello\"}, namespace)"
    );
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(ids.insert(panel["id"].as_u64().unwrap()), "unique ids");
        let grid = &panel["gridPos"];
        assert!(grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24);
        if panel["type"] != "row" {
            assert_eq!(panel["datasource"]["uid"], "${datasource}");
        }
    }
    let titles: Vec<&str> = panels
        .iter()
        .filter_map(|panel| panel["title"].as_str())
        .collect();
    let stats: Vec<&str> = panels
        .iter()
        .filter(|panel| panel["type"] == "stat")
        .filter_map(|panel| panel["title"].as_str())
        .collect();
    assert!(
        stats.contains(&"latency: error budget remaining (30d)"),
        "the budget is a stat: {stats:?}"
    );
    for wanted in [
        "availability: burn rate",
        "latency: error budget remaining (30d)",
        "Latency p99 by route",
        "Storage latency p99 by backend and operation",
        "Resident memory",
    ] {
        assert!(titles.contains(&wanted), "{wanted} in {titles:?}");
    }
    assert_eq!(
        rendered,
        dashboard::render("hello", &slos()),
        "deterministic"
    );
}

/// The metric names a PromQL expression selects: identifiers directly followed by `{`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut start = None;
    for (i, &b) in bytes.iter().enumerate() {
        let ident = b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        match (ident, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if b == b'{' && !bytes[s].is_ascii_digit() {
                    found.insert(expr[s..i].to_owned());
                }
                start = None;
            }
            _ => {}
        }
    }
    found
}

#[test]
fn the_dashboard_queries_only_metrics_the_platform_exports_or_the_rules_record() {
    let rendered = dashboard::render("hello", &slos());
    let queried: BTreeSet<String> = dashboard::expressions(&rendered)
        .unwrap()
        .iter()
        .flat_map(|expr| metric_names(expr))
        .collect();
    let mut exported = BTreeSet::new();
    for histogram in [
        names::HTTP_REQUEST_DURATION,
        names::DB_CLIENT_OPERATION_DURATION,
    ] {
        for suffix in ["_bucket", "_count", "_sum"] {
            exported.insert(format!("{histogram}{suffix}"));
        }
    }
    for name in [
        names::HTTP_ACTIVE_REQUESTS,
        names::HTTP_ABORTED_REQUESTS,
        names::BUILD_INFO,
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        exported.insert(name.to_owned());
    }
    // What the generated rules record, read off the rule file itself.
    let rules = platform::slo::rules::render("hello", &slos());
    for line in rules.lines() {
        if let Some(record) = line.trim().strip_prefix("- record: ") {
            exported.insert(record.to_owned());
        }
    }
    let unknown: Vec<&String> = queried.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "neither exported nor recorded: {unknown:?}"
    );
    // The parse found what the dashboard is about, so the check above is not vacuous.
    for wanted in [
        "slo:probe_error:ratio_rate30d",
        "slo:probe_error:ratio_rate5m",
        "slo:sli_error:ratio_rate30d",
        "slo:sli_error:ratio_rate5m",
        "slo:sli_error:ratio_rate3d",
        "http_server_request_duration_seconds_count",
        "http_server_request_duration_seconds_bucket",
        "db_client_operation_duration_seconds_bucket",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    ] {
        assert!(queried.contains(wanted), "{wanted} in {queried:?}");
    }
    // The SLO panels never recompute a month of increases on a refresh.
    for expr in dashboard::expressions(&rendered).unwrap() {
        assert!(!expr.contains("[30d]"), "{expr}");
    }
}

/// The documents of `yaml`, parsed by a real YAML parser into JSON values.
fn parse_yaml(yaml: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|document| {
            Value::deserialize(document).unwrap_or_else(|error| panic!("not YAML: {error}\n{yaml}"))
        })
        .collect()
}

#[test]
fn openslo_is_yaml_with_one_document_per_slo_and_the_probe_sli() {
    let slos = slos();
    let yaml = openslo::render("hello", &slos);
    let documents = parse_yaml(&yaml);
    // A leading `---` yields no empty document in YAML; every SLO is one document, and the
    // probe-based availability SLI one more.
    assert_eq!(documents.len(), slos.len() + 1, "{yaml}");
    let probe = &documents[slos.len()];
    assert_eq!(probe["metadata"]["name"], "hello-availability-probe");
    let probe_ratio = &probe["spec"]["indicator"]["spec"]["ratioMetric"];
    assert_eq!(probe_ratio["counter"], false, "probe_success is a gauge");
    let mut queries = Vec::new();
    for (document, slo) in documents.iter().zip(&slos) {
        assert_eq!(document["apiVersion"], "openslo/v1");
        assert_eq!(document["kind"], "SLO");
        let name = format!("hello-{}", slo.name.replace('_', "-"));
        assert_eq!(document["metadata"]["name"], name.as_str());
        let spec = &document["spec"];
        assert_eq!(spec["service"], "hello");
        assert_eq!(spec["description"], slo.description.as_ref());
        assert_eq!(spec["budgetingMethod"], "Occurrences");
        assert_eq!(spec["timeWindow"][0]["duration"], "30d");
        assert_eq!(spec["timeWindow"][0]["isRolling"], true);
        let target = spec["objectives"][0]["target"].as_f64().unwrap();
        assert!((target - slo.objective).abs() < 1e-12, "{target}");
        let ratio = &spec["indicator"]["spec"]["ratioMetric"];
        let first = if matches!(slo.sli, Sli::Latency { .. }) {
            "good"
        } else {
            "bad"
        };
        for part in [first, "total"] {
            let source = &ratio[part]["metricSource"];
            assert_eq!(source["type"], "Prometheus", "{part} of {name}");
            queries.push(source["spec"]["query"].as_str().unwrap().to_owned());
        }
    }
    for part in ["good", "total"] {
        queries.push(
            probe_ratio[part]["metricSource"]["spec"]["query"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    promtool_check(&queries);
}

/// `/ok` 200, `/fail` 500, `/hang` (503 from the platform's timeout), `/slow` past 10 ms.
fn failing() -> Service {
    Service::new("slotest", "0.0.1", 18998, |_context| async move {
        Ok(Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route(
                "/fail",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "broken") }),
            )
            .route("/hang", get(futures::future::pending::<&'static str>))
            .route(
                "/slow",
                get(|| async {
                    // Latency is what this route is about, not synchronisation.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    "slow"
                }),
            ))
    })
    .with_slos(vec![
        Slo::new("availability", "Not 5xx.", 0.999, Sli::availability()),
        Slo::new(
            "slow_latency",
            "/slow within 10 ms.",
            0.99,
            Sli::Latency {
                threshold_seconds: 0.01,
                routes: Routes::Only(&["/slow"]),
            },
        ),
        Slo::new(
            "delivery",
            "Fed by the service, not by requests.",
            0.99,
            Sli::Ratio {
                bad: "x_total{outcome=\"failed\"}",
                total: "x_total",
            },
        ),
    ])
}

#[tokio::test]
async fn slo_counts_server_errors_and_leaves_probes_out() {
    // Long enough that only `/hang` reaches it: `/slow` sleeps 50 ms, and a busy machine adds
    // its own delay to every request.
    let app = TestApp::spawn(&failing(), &[("server.request_timeout", "2s")]).await;
    let get = |path: &'static str| {
        let (client, url) = (app.client.clone(), app.url(path));
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    for (path, status, times) in [
        ("/ok", 200, 3),
        ("/fail", 500, 2),
        ("/hang", 503, 1),
        ("/nope", 404, 1),
        ("/slow", 200, 1),
        ("/livez", 200, 2),
        ("/readyz", 200, 1),
    ] {
        for _ in 0..times {
            assert_eq!(get(path).await, status, "{path}");
        }
    }
    let response = app.admin_get("/slo").await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    let slos = report["slos"].as_array().unwrap();
    assert_eq!(slos.len(), 3);

    let availability = &slos[0];
    assert_eq!(availability["name"], "availability");
    assert_eq!(availability["objective"], 0.999);
    assert_eq!(availability["window"], "30d");
    let labels: Vec<&str> = availability["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|window| window["window"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]);
    for window in availability["windows"].as_array().unwrap() {
        // 3 ok + 2 fail + 1 timeout + 1 unmatched + 1 slow; the probes are left out.
        assert_eq!(window["total"], 8, "{window}");
        // The handler's 500s and the platform's own timeout 503.
        assert_eq!(window["bad"], 3, "{window}");
        assert_eq!(window["sli"], 0.625, "{window}");
        let burn = window["burn_rate"].as_f64().unwrap();
        assert!((burn - 0.375 / 0.001).abs() < 1e-6, "{burn}");
        let remaining = window["error_budget_remaining"].as_f64().unwrap();
        assert!((remaining - (1.0 - 375.0)).abs() < 1e-6, "{remaining}");
    }
    assert_eq!(
        availability["windows"][7]["complete"], false,
        "the process has not run 30 days"
    );

    let latency = &slos[1]["windows"][0];
    assert_eq!((&latency["total"], &latency["bad"]), (&1.into(), &1.into()));

    let ratio = &slos[2]["windows"][0];
    assert_eq!(ratio["total"], 0, "requests do not feed a ratio SLI");
    assert_eq!(ratio["sli"], Value::Null);
    assert_eq!(ratio["burn_rate"], Value::Null);
    assert_eq!(ratio["error_budget_remaining"], 1.0);
}

/// Notifies when dropped: the server dropped the handler's future (the client went away).
struct DropSignal(Arc<Notify>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

#[tokio::test]
async fn a_request_whose_client_went_away_is_not_counted() {
    let (entered, dropped) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let service: Service = Service::new("slotest", "0.0.1", 18997, {
        let (entered, dropped) = (entered.clone(), dropped.clone());
        move |_context| {
            let (entered, dropped) = (entered.clone(), dropped.clone());
            async move {
                Ok(Router::new().route("/ok", get(|| async { "ok" })).route(
                    "/wait",
                    get(move || async move {
                        let _signal = DropSignal(dropped.clone());
                        entered.notify_one();
                        futures::future::pending::<&'static str>().await
                    }),
                ))
            }
        }
    })
    .with_slos(vec![Slo::new(
        "availability",
        "Not 5xx.",
        0.999,
        Sli::availability(),
    )]);
    let app = TestApp::spawn(&service, &[]).await;
    assert_eq!(app.get("/ok").await.status(), 200);
    let waiting = tokio::spawn({
        let (client, url) = (app.client.clone(), app.url("/wait"));
        async move { client.get(url).send().await }
    });
    entered.notified().await;
    // Dropping the client's request closes its connection; the server drops the handler.
    waiting.abort();
    tokio::time::timeout(Duration::from_secs(10), dropped.notified())
        .await
        .expect("the server drops the request of a client that went away");

    let report: Value = app.admin_get("/slo").await.json().await.unwrap();
    let window = &report["slos"][0]["windows"][0];
    assert_eq!(window["total"], 1, "only /ok: {window}");
    assert_eq!(window["bad"], 0, "{window}");
}
