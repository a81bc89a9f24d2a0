//! hello's generated Prometheus rules: the committed file matches the declaration, the binary
//! prints it, and the rules behave under `promtool test rules`.

use std::io::Write as _;
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
    let output = match Command::new("promtool").args(args).output() {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            // CI must not pass by skipping; clippy.toml bans env reads meant for configuration,
            // and this one only decides whether a missing tool is an error.
            #[allow(clippy::disallowed_methods)]
            let in_ci = std::env::var_os("CI").is_some();
            assert!(!in_ci, "promtool not installed, and CI is set");
            // Written directly: libtest captures eprintln!, and a skip must be visible.
            let _ = std::io::stderr().write_all(b"skipped: promtool not installed\n");
            return;
        }
        Err(error) => panic!("promtool: {error}"),
    };
    assert!(
        output.status.success(),
        "promtool {args:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
