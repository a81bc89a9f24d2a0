//! The real binary: `check-config` redacts notes' secrets and names a bad key with exit 2;
//! `migrate` applies the schema and exits.

use std::process::Command;

fn notes() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_notes"));
    command.env_clear().env("PATH", "/usr/bin:/bin");
    command
}

#[test]
fn check_config_redacts_secrets_and_rejects_unknown_keys() {
    let output = notes()
        .arg("check-config")
        .env("NOTES__NOTES__CSRF_SECRET", "hunter2")
        .env(
            "NOTES__MAIL__SMTP_URL",
            "smtp://user:swordfish@127.0.0.1:25",
        )
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(printed.contains("csrf_secret = \"***\""), "{printed}");
    assert!(
        printed.contains("smtp://user:***@127.0.0.1:25"),
        "{printed}"
    );
    assert!(!printed.contains("hunter2") && !printed.contains("swordfish"));
    assert!(printed.contains("listen = \"127.0.0.1:8083\""), "{printed}");

    let output = notes()
        .arg("check-config")
        .env("NOTES__SIGNIN__PER_HOUR", "3")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("per_hour"));
}

#[test]
fn migrate_applies_the_schema_once() {
    let database = platform::testing::temp_path("db");
    let url = format!("sqlite://{}", database.display());
    for _ in 0..2 {
        let output = notes()
            .arg("migrate")
            .env("NOTES__STORAGE__URL", &url)
            .env("NOTES__TELEMETRY__LOG_FORMAT", "json")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    }
    assert!(database.exists());
    let _ = std::fs::remove_file(database);
}
