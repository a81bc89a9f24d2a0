//! External tools the tests run (promtool, …), the rule that a missing one skips locally and
//! fails under CI, and the check that generated SLO files are current.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::service::Service;

/// Whether a test that needs `what` (a tool, a server) may go on: `true` when it is available.
/// Otherwise the test prints `skipped: <what> not available` and should return, except under CI
/// (`CI` set), where a missing dependency fails the test: CI must never pass by skipping.
pub fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    #[allow(clippy::disallowed_methods)] // Detects CI; configuration is not read here.
    let in_ci = std::env::var_os("CI").is_some();
    assert!(!in_ci, "{what} is required under CI but is not available");
    // Straight to the stderr handle: libtest captures `eprintln!` of passing tests.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {what} not available");
    false
}

/// Runs the external tool `program` (promtool, prometheus…) with `args`, feeding it `stdin`.
/// `None` when it is not installed (see [`require`]); the caller asserts on the output.
pub fn run_tool(program: &str, args: &[&str], stdin: &[u8]) -> Option<std::process::Output> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let spawned = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            require(program, false);
            return None;
        }
        Err(error) => panic!("{program} cannot start: {error}"),
    };
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin).expect("the tool reads its input");
    }
    Some(child.wait_with_output().expect("the tool finishes"))
}

/// Asserts that the SLO material committed under `deploy/` (`deploy` is its path) is what the
/// declaration generates now: `prometheus/rules/<service>.yml`, `grafana/dashboards/<service>.json`,
/// `openslo/<service>.yaml`, `kubernetes/base/<service>/prometheusrule.yaml` and the Helm
/// chart's copy, `helm/sre-service/files/rules/<service>.yaml`. A stale file
/// fails with the command that regenerates it.
pub fn assert_generated_slo_files<S>(deploy: &std::path::Path, service: &Service<S>)
where
    S: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
{
    let (slos, dashboard) = (service.slos(), service.dashboard());
    let service = service.name();
    let files: [(String, &str, String); 5] = [
        (
            format!("prometheus/rules/{service}.yml"),
            "rules",
            crate::slo::rules::render(service, slos),
        ),
        (
            format!("grafana/dashboards/{service}.json"),
            "dashboard",
            dashboard,
        ),
        (
            format!("openslo/{service}.yaml"),
            "openslo",
            crate::slo::openslo::render(service, slos),
        ),
        (
            format!("kubernetes/base/{service}/prometheusrule.yaml"),
            "prometheus-rule",
            crate::slo::rules::render_prometheus_rule(service, slos),
        ),
        // The Helm chart carries the same rule: a chart cannot read files outside itself.
        (
            format!("helm/sre-service/files/rules/{service}.yaml"),
            "prometheus-rule",
            crate::slo::rules::render_prometheus_rule(service, slos),
        ),
    ];
    for (relative, artifact, generated) in files {
        let command = format!("cargo run -q -p {service} -- slo {artifact} > deploy/{relative}");
        let path = deploy.join(&relative);
        let committed = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!("{}: {error}; generate it with `{command}`", path.display())
        });
        assert!(
            committed == generated,
            "deploy/{relative} is stale; regenerate it with `{command}`"
        );
    }
}

/// Runs `promtool` with `args` and `input` on its standard input, failing the test with its
/// output when it fails (skipped locally, a failure under CI, when promtool is missing).
pub fn promtool(args: &[&str], input: &[u8]) {
    let Some(output) = run_tool("promtool", args, input) else {
        return;
    };
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
