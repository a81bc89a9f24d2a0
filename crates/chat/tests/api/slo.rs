//! chat's SLOs: generated files match the declaration, promtool accepts the rules and the live
//! metrics, and `/slo` counts delivered messages.

use serde_json::Value;

use crate::helpers::{Client, spawn_with, unique_room, ws_url};

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
    let service = chat::service();
    let slos = service.slos();
    check_generated(
        "prometheus/rules/chat.yml",
        "cargo run -q -p chat -- slo rules > deploy/prometheus/rules/chat.yml",
        platform::slo::rules::render("chat", slos),
    );
    check_generated(
        "grafana/dashboards/chat.json",
        "cargo run -q -p chat -- slo dashboard > deploy/grafana/dashboards/chat.json",
        platform::slo::dashboard::render("chat", slos),
    );
    check_generated(
        "openslo/chat.yaml",
        "cargo run -q -p chat -- slo openslo > deploy/openslo/chat.yaml",
        platform::slo::openslo::render("chat", slos),
    );
}

fn promtool(args: &[&str], input: &[u8]) {
    let Some(output) = platform::testing::run_tool("promtool", args, input) else {
        return;
    };
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn promtool_accepts_the_rules() {
    promtool(
        &[
            "check",
            "rules",
            &format!("{DEPLOY}/prometheus/rules/chat.yml"),
        ],
        b"",
    );
}

#[tokio::test]
async fn delivered_messages_count_toward_the_slos_and_metrics_are_valid() {
    let app = spawn_with(&[]).await;
    let mut client = Client::connect(&ws_url(&app.address)).await;
    client.join(&unique_room(), "ada", None).await;
    client.say("one").await;
    client.say("two").await;
    client.messages(2).await;
    let metrics = app.admin_get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"chat_deliveries_total{latency="within_100ms"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains("chat_connections 1"), "{metrics}");
    promtool(&["check", "metrics"], metrics.as_bytes());
    let report: Value = app.admin_get("/slo").await.json().await.unwrap();
    let delivered = report["slos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|slo| slo["name"] == "delivered")
        .unwrap();
    assert_eq!(delivered["windows"][0]["total"], 2, "{delivered}");
    assert_eq!(delivered["windows"][0]["bad"], 0, "{delivered}");
}
