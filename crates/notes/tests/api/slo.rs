//! notes' SLOs: the generated files under `deploy/` match the declaration, promtool accepts and
//! tests the rules and the live metrics, and sign-ins are counted by outcome.

use platform::testing::promtool;

use crate::helpers::{PASSWORD, spawn_sqlite, unique_email};

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");

fn check_generated(relative: &str, command: &str, generated: String) {
    let path = format!("{DEPLOY}/{relative}");
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{path}: {error}; generate it with `{command}`"));
    assert!(
        committed == generated,
        "deploy/{relative} is stale; regenerate it with `{command}`"
    );
}

#[test]
fn committed_files_match_the_declaration() {
    let service = notes::service();
    let slos = service.slos();
    check_generated(
        "prometheus/rules/notes.yml",
        "cargo run -q -p notes -- slo rules > deploy/prometheus/rules/notes.yml",
        platform::slo::rules::render("notes", slos),
    );
    check_generated(
        "grafana/dashboards/notes.json",
        "cargo run -q -p notes -- slo dashboard > deploy/grafana/dashboards/notes.json",
        platform::slo::dashboard::render("notes", slos),
    );
    check_generated(
        "openslo/notes.yaml",
        "cargo run -q -p notes -- slo openslo > deploy/openslo/notes.yaml",
        platform::slo::openslo::render("notes", slos),
    );
}

#[test]
fn promtool_accepts_and_tests_the_rules() {
    promtool(
        &[
            "check",
            "rules",
            &format!("{DEPLOY}/prometheus/rules/notes.yml"),
        ],
        b"",
    );
    promtool(
        &[
            "test",
            "rules",
            &format!("{DEPLOY}/prometheus/tests/notes.test.yml"),
        ],
        b"",
    );
}

#[tokio::test]
async fn live_metrics_count_signins_by_outcome_and_pass_promtool() {
    let app = spawn_sqlite(&[]).await;
    let browser = app.browser();
    let email = unique_email();
    browser.signup(&email, PASSWORD).await;
    browser.signin(&email, "wrong password").await;
    browser.signin(&unique_email(), PASSWORD).await;
    browser.signin(&email, PASSWORD).await;
    let metrics = app.app.admin_get("/metrics").await.text().await.unwrap();
    for outcome in ["success", "wrong_password", "unknown_user"] {
        let line = format!("notes_signins_total{{outcome=\"{outcome}\"}}");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    assert!(
        metrics.contains(r#"db_system_name="sqlite",db_operation_name="create_note""#)
            || metrics.contains("db_client_operation_duration_seconds")
    );
    promtool(&["check", "metrics"], metrics.as_bytes());
}
