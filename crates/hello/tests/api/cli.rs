//! The `hello` binary itself: command line, exit codes, and the SIGTERM drain.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

fn hello() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hello"));
    command.env_clear().env("PATH", "/usr/bin:/bin");
    command
}

#[test]
fn version_names_the_service() {
    let output = hello().arg("--version").output().unwrap();
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .starts_with(&format!("hello {}", env!("CARGO_PKG_VERSION")))
    );
}

#[test]
fn check_config_prints_effective_settings_with_secrets_redacted() {
    let output = hello()
        .arg("check-config")
        .env(
            "HELLO__STORAGE__URL",
            "postgres://app:hunter2@127.0.0.1:5432/app",
        )
        .env("HELLO__SERVER__REQUEST_TIMEOUT", "3s")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("postgres://app:***@127.0.0.1:5432/app"),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
    assert!(text.contains("request_timeout = \"3s\""), "{text}");
    assert!(text.contains("listen = \"127.0.0.1:8081\""), "{text}");
}

#[test]
fn check_config_exits_2_with_one_line_naming_the_bad_key() {
    for (key, value, named) in [
        ("HELLO__SERVER__LISTN", "127.0.0.1:1", "listn"),
        ("HELLO__DATABASE__URL", "x", "database"),
        ("HELLO__SERVER__REQUEST_TIMEOUT", "soon", "soon"),
    ] {
        let output = hello()
            .arg("check-config")
            .env(key, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{key}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(named), "{key}: {stderr}");
    }
}

#[test]
fn a_missing_config_file_is_an_error() {
    let output = hello()
        .args(["check-config", "--config", "/nonexistent/hello.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn config_file_values_apply_and_environment_wins() {
    let file = platform::testing::temp_path("toml");
    std::fs::write(
        &file,
        "[server]\nmax_concurrency = 7\nrequest_timeout = \"4s\"\n",
    )
    .unwrap();
    let output = hello()
        .args(["check-config", "--config"])
        .arg(&file)
        .env("HELLO__SERVER__REQUEST_TIMEOUT", "5s")
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("max_concurrency = 7"), "{text}");
    assert!(text.contains("request_timeout = \"5s\""), "{text}");
}

#[test]
fn migrate_creates_the_sqlite_schema_and_exits() {
    let dir = platform::testing::temp_path("dir");
    let url = format!("sqlite://{}/nested/hello.db", dir.display());
    let output = hello()
        .arg("migrate")
        .env("HELLO__STORAGE__URL", &url)
        .env("HELLO__TELEMETRY__LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        dir.join("nested/hello.db").is_file(),
        "the database file and its directory are created"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_unknown_storage_scheme_fails_start_up_with_exit_1() {
    let output = hello()
        .arg("serve")
        .env("HELLO__STORAGE__URL", "ftp://x")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("ftp"));
}

/// Starts `hello serve` on random ports (no log format set: stdout is a pipe, so JSON is the
/// default) and returns the child, its (api, admin) addresses read from the JSON start-up line,
/// and a channel of every later log line.
fn serve_with(
    drain_delay: &str,
    log_level: &str,
) -> (Child, String, String, std::sync::mpsc::Receiver<String>) {
    let mut child = hello()
        .arg("serve")
        .env("HELLO__SERVER__LISTEN", "127.0.0.1:0")
        .env("HELLO__ADMIN__LISTEN", "127.0.0.1:0")
        .env("HELLO__STORAGE__URL", "memory:")
        .env("HELLO__SHUTDOWN__DRAIN_DELAY", drain_delay)
        .env("HELLO__TELEMETRY__LOG_LEVEL", log_level)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .map(|line| {
            serde_json::from_str::<Value>(&line)
                .unwrap_or_else(|_| panic!("not a JSON log line: {line}"))
        })
        .find(|line| line["message"] == "Serving.")
        .expect("a start-up line");
    assert_eq!(started["version"], env!("CARGO_PKG_VERSION"));
    assert!(started["revision"].is_string());
    // Keep draining stdout so the child never blocks on a full pipe.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let address = |key: &str| format!("http://{}", started[key].as_str().unwrap());
    (child, address("api"), address("admin"), receiver)
}

fn serve(drain_delay: &str) -> (Child, String, String) {
    let (child, api, admin, _logs) = serve_with(drain_delay, "info");
    (child, api, admin)
}

fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn sigterm_fails_readiness_then_drains_and_exits_0() {
    let (mut child, api, admin) = serve("2s");
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{api}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(format!("{admin}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    signal(&child, "-TERM");
    // During the drain delay the listener still accepts, and readiness fails.
    let mut saw_failing_readiness = false;
    for _ in 0..100 {
        match client.get(format!("{api}/readyz")).send().await {
            Ok(response) if response.status() == 503 => {
                saw_failing_readiness = true;
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(error) => panic!("the listener must accept during the drain delay: {error}"),
        }
    }
    assert!(
        saw_failing_readiness,
        "readiness fails once SIGTERM arrives"
    );
    assert_eq!(
        client
            .get(format!("{api}/livez"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "still live while draining"
    );
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn sigint_stops_it_too() {
    let (mut child, api, _admin) = serve("0s");
    assert_eq!(
        reqwest::get(format!("{api}/livez")).await.unwrap().status(),
        200
    );
    signal(&child, "-INT");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn credentials_never_reach_the_logs_even_at_debug() {
    let (mut child, api, _admin, logs) = serve_with("0s", "debug");
    let client = reqwest::Client::new();
    for path in ["/hello/alice", "/nowhere"] {
        let response = client
            .get(format!("{api}{path}"))
            .header("authorization", "Bearer secret-token-123")
            .header("cookie", "session=secret-cookie-456")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }
    signal(&child, "-TERM");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    // Every line the child wrote: the reader thread ends at the end of the child's stdout, so
    // this waits for it to have forwarded the last line rather than for the scheduler.
    let logged: Vec<String> = tokio::task::spawn_blocking(move || logs.iter().collect())
        .await
        .unwrap();
    let all = logged.join("\n");
    assert!(
        all.contains("Request finished."),
        "debug logs each request: {all}"
    );
    assert!(
        all.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "the caller's trace id is logged"
    );
    assert!(
        !all.contains("secret-token-123") && !all.contains("secret-cookie-456"),
        "{all}"
    );
}
