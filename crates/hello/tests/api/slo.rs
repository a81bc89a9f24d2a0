//! hello's generated Prometheus rules: the committed file matches the declaration, the binary
//! prints it, and the rules behave under `promtool test rules`.

use std::path::Path;
use std::process::Command;

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/prometheus/rules/hello.yml"
);
const RULE_TESTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/prometheus/tests/hello.test.yml"
);
const REGENERATE: &str = "cargo run -q -p hello -- slo rules > deploy/prometheus/rules/hello.yml";

fn generated() -> String {
    platform::slo::rules::render("hello", hello::service().slos())
}

#[test]
fn committed_rules_match_the_declaration() {
    let committed = std::fs::read_to_string(RULES)
        .unwrap_or_else(|error| panic!("{RULES}: {error}; generate it with `{REGENERATE}`"));
    assert!(
        committed == generated(),
        "deploy/prometheus/rules/hello.yml is stale; regenerate it with `{REGENERATE}`"
    );
}

#[test]
fn the_binary_prints_the_rules() {
    let output = Command::new(env!("CARGO_BIN_EXE_hello"))
        .args(["slo", "rules"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8(output.stdout).unwrap(), generated());
}

#[test]
fn promtool_accepts_the_rules() {
    promtool(&["check", "rules", RULES]);
}

#[test]
fn promtool_rule_tests_pass() {
    promtool(&["test", "rules", RULE_TESTS]);
}

/// Runs promtool and fails with its output. Without promtool the test is skipped locally, and
/// fails in CI, where `.ci/run` installs it.
fn promtool(args: &[&str]) {
    assert!(Path::new(args[args.len() - 1]).exists(), "{args:?}");
    promtool_with_input(args, None);
}

/// Runs promtool with `input` on its standard input, failing the test with its output.
fn promtool_with_input(args: &[&str], input: Option<&[u8]>) {
    platform::testing::promtool(args, input.unwrap_or_default());
}

#[tokio::test]
async fn promtool_accepts_the_live_metrics() {
    let app = crate::helpers::spawn_with("memory:", time::macros::date!(2024 - 06 - 15), &[]).await;
    let user = crate::helpers::unique_username();
    assert_eq!(app.put_date(&user, "1990-06-16").await.status(), 204);
    app.greeting(&user).await;
    assert_eq!(app.put_date(&user, "2999-01-01").await.status(), 422);
    assert_eq!(app.get_birthday("nobody").await.status(), 404);
    let metrics = app.admin_get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("http_server_request_duration_seconds_bucket"),
        "{metrics}"
    );
    promtool_with_input(&["check", "metrics"], Some(metrics.as_bytes()));
}
