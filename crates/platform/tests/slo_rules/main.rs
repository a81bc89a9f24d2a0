//! The rule generator against the real tool: `promtool check rules` accepts what it renders for
//! every kind of SLI, including route lists that need regex escaping and counter ratios.
//! hello's committed rules and their behaviour tests run in hello's own suite. Also: the stack
//! alerts for Kubernetes are compose's, so the two cannot drift.

// A failed unwrap in a test helper is the test failing, loudly, where it happened.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use platform::slo::{Routes, Sli, Slo, rules};

fn every_kind_of_sli() -> Vec<Slo> {
    vec![
        Slo::new("availability", "Not 5xx.", 0.999, Sli::availability()),
        Slo::new(
            "write_availability",
            "Writes \"answered\" without a server error.",
            0.995,
            Sli::Availability {
                routes: Routes::Only(&["/hello/{username}", "/v1/items.json", "/a+b|c"]),
            },
        ),
        Slo::new("latency", "Within 250 ms.", 0.95, Sli::latency(0.25)),
        Slo::new(
            "slow_latency",
            "Within 1 s on the export route.",
            0.9,
            Sli::Latency {
                threshold_seconds: 1.0,
                routes: Routes::Only(&["/export"]),
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

fn write(name: &str, text: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn promtool_accepts_rules_for_every_kind_of_sli() {
    let text = rules::render("chat", &every_kind_of_sli());
    let path = write("slo_rules_every_kind.yml", &text);
    if let Some(output) = promtool(&["check", "rules", path.to_str().unwrap()]) {
        // 8 recording rules and 4 burn-rate alerts plus the absent alert per SLO, as many for
        // the probe SLI (once, under the first availability SLO), and the dependency alert.
        assert!(output.contains("SUCCESS: 79 rules found"), "{output}");
    }
}

#[test]
fn promtool_accepts_rules_without_slos() {
    let path = write("slo_rules_none.yml", &rules::render("empty", &[]));
    promtool(&["check", "rules", path.to_str().unwrap()]);
}

/// `deploy/kubernetes/components/monitoring/stack-prometheusrule.yaml` carries exactly the groups
/// of `deploy/prometheus/rules/stack.yml`: Watchdog, TargetDown and ProbeFailing mean the same on
/// Kubernetes as under compose.
#[test]
fn kubernetes_stack_rules_are_the_compose_stack_rules() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let read = |relative: &str| -> serde_yaml_ng::Value {
        let text = std::fs::read_to_string(deploy.join(relative)).unwrap();
        serde_yaml_ng::from_str(&text).unwrap()
    };
    let compose = read("prometheus/rules/stack.yml");
    let kubernetes = read("kubernetes/components/monitoring/stack-prometheusrule.yaml");
    assert_eq!(kubernetes["kind"], "PrometheusRule");
    let names: Vec<_> = compose["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|rule| rule["alert"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Watchdog", "TargetDown", "ProbeFailing"]);
    assert!(
        kubernetes["spec"]["groups"] == compose["groups"],
        "stack-prometheusrule.yaml differs from deploy/prometheus/rules/stack.yml; edit both together"
    );
}

/// Runs promtool, failing with its output; returns its stdout, or `None` when promtool is not
/// installed outside CI.
fn promtool(args: &[&str]) -> Option<String> {
    let output = platform::testing::run_tool("promtool", args, b"")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "promtool {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Some(stdout)
}
