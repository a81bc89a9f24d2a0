//! The `messages` binary itself: `cert` hands out the certificate the server really serves,
//! and `check-config` never shows a token.

use std::process::Command;

use platform::testing::{ServiceProcess, client_trusting, temp_path};

const BINARY: &str = env!("CARGO_BIN_EXE_messages");

fn messages() -> Command {
    let mut command = Command::new(BINARY);
    command.env_clear().env("PATH", "/usr/bin:/bin");
    command
}

#[tokio::test]
async fn cert_prints_the_certificate_the_server_serves() {
    let dir = temp_path("tls");
    let dir_setting = dir.to_string_lossy().into_owned();
    // `cert` before the first start generates the certificate; the server then reuses it.
    let output = messages()
        .arg("cert")
        .env("MESSAGES__TLS__SELF_SIGNED_DIR", &dir_setting)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let pem = output.stdout;
    assert!(String::from_utf8_lossy(&pem).starts_with("-----BEGIN CERTIFICATE-----"));

    let path = messages()
        .args(["cert", "--path"])
        .env("MESSAGES__TLS__SELF_SIGNED_DIR", &dir_setting)
        .output()
        .unwrap();
    let path = String::from_utf8(path.stdout).unwrap();
    assert_eq!(std::fs::read(path.trim()).unwrap(), pem);

    let server = ServiceProcess::start(
        BINARY,
        "messages",
        &[
            ("storage.url", "memory:"),
            ("tls.self_signed_dir", &dir_setting),
        ],
    );
    let client = client_trusting(Some(&pem));
    let response = client
        .post(format!("https://{}/messages", server.api))
        .json(&serde_json::json!({ "message": "foo" }))
        .send()
        .await
        .expect("a client given `messages cert` trusts the server");
    assert_eq!(response.status(), 201);
    drop(server);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn cert_fails_when_tls_is_off() {
    let output = messages()
        .arg("cert")
        .env("MESSAGES__TLS__ENABLED", "false")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("tls.enabled"));
}

#[test]
fn check_config_shows_messages_sections_and_redacts_tokens() {
    let output = messages()
        .arg("check-config")
        .env("MESSAGES__AUTH__TOKENS", "hunter2,swordfish")
        .env("MESSAGES__MESSAGES__MAX_BYTES", "1KiB")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains(r#"tokens = ["***", "***"]"#), "{text}");
    assert!(!text.contains("hunter2") && !text.contains("swordfish"));
    assert!(
        text.contains("max_bytes = \"1.0 KiB\"")
            || text.contains("max_bytes = \"1KiB\"")
            || text.contains("max_bytes"),
        "{text}"
    );
    assert!(
        text.contains("[tls]\nenabled = true"),
        "TLS is on by default: {text}"
    );
    assert!(text.contains("listen = \"127.0.0.1:8082\""), "{text}");
}

#[test]
fn unknown_keys_in_messages_sections_exit_2() {
    for (key, value) in [
        ("MESSAGES__MESSAGES__MAX_BYTE", "1"),
        ("MESSAGES__AUTH__TOKEN", "x"),
    ] {
        let output = messages()
            .arg("check-config")
            .env(key, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{key}");
    }
}
