//! chat's SLOs: generated files match the declaration, promtool accepts the rules and the live
//! metrics, and `/slo` counts delivered messages.

use platform::testing::promtool;
use serde_json::Value;

use crate::helpers::{Client, spawn_with, unique_room, ws_url};

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");

#[test]
fn committed_files_match_the_declaration() {
    let service = chat::service();
    platform::testing::assert_generated_slo_files(std::path::Path::new(DEPLOY), &service);
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
