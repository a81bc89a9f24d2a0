//! messages' SLOs: the generated files under `deploy/` match the declaration, promtool accepts
//! and tests the rules and the live metrics, and `GET /slo` counts rate limits as good.

use platform::testing::promtool;
use serde_json::Value;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");

#[test]
fn committed_files_match_the_declaration() {
    let service = messages::service();
    platform::testing::assert_generated_slo_files(std::path::Path::new(DEPLOY), &service);
}

#[test]
fn promtool_accepts_and_tests_the_rules() {
    promtool(
        &[
            "check",
            "rules",
            &format!("{DEPLOY}/prometheus/rules/messages.yml"),
        ],
        b"",
    );
    promtool(
        &[
            "test",
            "rules",
            &format!("{DEPLOY}/prometheus/tests/messages.test.yml"),
        ],
        b"",
    );
}

#[tokio::test]
async fn promtool_accepts_the_live_metrics_and_slo_counts_4xx_as_good() {
    let app = crate::helpers::spawn_with(
        "memory:",
        &[
            ("ratelimit.enabled", "true"),
            ("ratelimit.burst", "4"),
            ("ratelimit.per_second", "0.01"),
        ],
    )
    .await;
    app.store("foo").await;
    assert_eq!(app.get_message(&"a".repeat(64)).await.status(), 404);
    assert_eq!(app.get_message("nope").await.status(), 400);
    assert_eq!(app.post("x".repeat(70 * 1024).as_str()).await.status(), 413);
    assert_eq!(app.post("limited").await.status(), 429);

    let metrics = app.app.admin_get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("messages_stored_total 1"), "{metrics}");
    promtool(&["check", "metrics"], metrics.as_bytes());

    let report: Value = app.app.admin_get("/slo").await.json().await.unwrap();
    let availability = &report["slos"][0];
    assert_eq!(availability["name"], "availability");
    for window in availability["windows"].as_array().unwrap() {
        assert_eq!(window["total"], 5, "{window}");
        assert_eq!(
            window["bad"], 0,
            "4xx, 429 included, are the client's: {window}"
        );
    }
}
