//! hello's SLO views: `GET /slo` counts its requests (probes left out), and the generated
//! dashboard and OpenSLO files under `deploy/` are what the code generates now.

use platform::slo::{dashboard, openslo};
use serde_json::Value;
use time::macros::date;

use crate::helpers::{spawn_with, unique_username};

#[tokio::test]
async fn slo_counts_good_requests_and_leaves_probes_out() {
    let app = spawn_with("memory:", date!(2024 - 06 - 15), &[]).await;
    let username = unique_username();
    assert_eq!(app.put_date(&username, "2000-01-01").await.status(), 204);
    app.greeting(&username).await;
    assert_eq!(app.get_birthday("not-letters-1").await.status(), 400);
    assert_eq!(app.get_birthday(&unique_username()).await.status(), 404);
    for probe in ["/livez", "/readyz", "/livez"] {
        let response = app.app.get(probe).await;
        assert_eq!(response.status(), 200, "{probe}");
    }

    let response = app.admin_get("/slo").await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    let slos = report["slos"].as_array().unwrap();
    let names: Vec<&str> = slos
        .iter()
        .map(|slo| slo["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["availability", "latency"]);
    let availability = &slos[0];
    assert_eq!(availability["objective"], 0.999);
    assert_eq!(availability["window"], "30d");
    for window in availability["windows"].as_array().unwrap() {
        // PUT, GET, a 400 and a 404: 4xx are the client's, so good; the probes are not counted.
        assert_eq!(window["total"], 4, "{window}");
        assert_eq!(window["bad"], 0, "{window}");
        assert_eq!(window["sli"], 1.0, "{window}");
        assert_eq!(window["burn_rate"], 0.0, "{window}");
        assert_eq!(window["error_budget_remaining"], 1.0, "{window}");
    }
    // How many were fast depends on the machine; that all four were counted does not.
    assert_eq!(slos[1]["windows"][0]["total"], 4);
}

/// Fails, naming the command that regenerates `path`, when it differs from `generated`.
fn assert_committed(path: &str, generated: &str, command: &str) {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(&full)
        .unwrap_or_else(|error| panic!("{path} is missing ({error}); run `{command} > {path}`"));
    assert!(
        committed == generated,
        "{path} differs from what the code generates; run `{command} > {path}` and commit it"
    );
}

#[test]
fn the_committed_dashboard_is_current() {
    let service = hello::service();
    assert_committed(
        "deploy/grafana/dashboards/hello.json",
        &dashboard::render(service.name(), service.slos()),
        "cargo run -q -p hello -- slo dashboard",
    );
}

#[test]
fn the_committed_openslo_is_current() {
    let service = hello::service();
    assert_committed(
        "deploy/openslo/hello.yaml",
        &openslo::render(service.name(), service.slos()),
        "cargo run -q -p hello -- slo openslo",
    );
}
