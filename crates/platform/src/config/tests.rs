use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;

use super::*;

fn hello_defaults() -> Settings {
    Settings::for_service("hello", 8081)
}

fn load_pairs(pairs: &[(&str, &str)]) -> Result<Loaded<NoServiceSettings>, ConfigError> {
    load(
        "hello",
        &hello_defaults(),
        &Source::from_pairs(pairs.iter().copied()),
    )
}

#[test]
fn defaults_follow_the_design_table() {
    let loaded = load_pairs(&[]).unwrap();
    let s = loaded.platform;
    assert_eq!(s.server.listen.to_string(), "127.0.0.1:8081");
    assert_eq!(s.admin.listen.to_string(), "127.0.0.1:9081");
    assert_eq!(s.server.request_timeout, Duration::from_secs(10));
    assert_eq!(s.server.body_limit, ByteSize::kib(64));
    assert_eq!(s.server.unread_body_drain, ByteSize::kib(64));
    assert_eq!(s.server.max_concurrency, 1024);
    assert_eq!(s.storage.url.expose(), "sqlite://./data/hello.db");
    assert_eq!(s.shutdown.drain_delay, Duration::from_secs(5));
    assert_eq!(s.shutdown.grace, Duration::from_secs(25));
    assert_eq!(s.telemetry.log_level, "info");
}

#[test]
fn environment_overrides_nested_keys_with_double_underscores() {
    let loaded = load_pairs(&[
        ("HELLO__STORAGE__URL", "memory:"),
        ("HELLO__SERVER__REQUEST_TIMEOUT", "250ms"),
        ("HELLO__SERVER__BODY_LIMIT", "1KiB"),
        ("HELLO__SERVER__UNREAD_BODY_DRAIN", "2KiB"),
        ("HELLO__STORAGE__MIGRATE", "false"),
        ("OTHER__SERVER__MAX_CONCURRENCY", "1"),
    ])
    .unwrap();
    let s = loaded.platform;
    assert_eq!(s.storage.url.expose(), "memory:");
    assert_eq!(s.server.request_timeout, Duration::from_millis(250));
    assert_eq!(s.server.body_limit, ByteSize::kib(1));
    assert_eq!(s.server.unread_body_drain, ByteSize::kib(2));
    assert!(!s.storage.migrate);
    assert_eq!(
        s.server.max_concurrency, 1024,
        "another service's variables are ignored"
    );
}

#[test]
fn file_sits_between_defaults_and_environment() {
    let dir = std::env::temp_dir().join(format!("platform-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hello.toml");
    std::fs::write(
        &file,
        "[server]\nmax_concurrency = 7\nrequest_timeout = \"3s\"\n",
    )
    .unwrap();
    let mut source = Source::from_pairs([("HELLO__SERVER__MAX_CONCURRENCY", "9")]);
    source.file = Some(file);
    let loaded = load::<NoServiceSettings>("hello", &hello_defaults(), &source).unwrap();
    assert_eq!(loaded.platform.server.max_concurrency, 9);
    assert_eq!(
        loaded.platform.server.request_timeout,
        Duration::from_secs(3)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unknown_keys_and_sections_are_errors_that_name_them() {
    let error = load_pairs(&[("HELLO__SERVER__LISTN", "127.0.0.1:1")]).unwrap_err();
    assert!(error.to_string().contains("listn"), "{error}");
    let error = load_pairs(&[("HELLO__DATABASE__URL", "x")]).unwrap_err();
    assert!(error.to_string().contains("`database`"), "{error}");
}

#[test]
fn bad_values_are_errors() {
    assert!(load_pairs(&[("HELLO__SERVER__REQUEST_TIMEOUT", "soon")]).is_err());
    assert!(load_pairs(&[("HELLO__SERVER__MAX_CONCURRENCY", "many")]).is_err());
    assert!(load_pairs(&[("HELLO__SERVER__LISTEN", "nowhere")]).is_err());
}

#[test]
fn missing_file_is_an_error() {
    let source = Source {
        file: Some(PathBuf::from("/nonexistent/hello.toml")),
        ..Source::default()
    };
    let error = load::<NoServiceSettings>("hello", &hello_defaults(), &source).unwrap_err();
    assert!(error.to_string().contains("does not exist"));
}

#[test]
fn lists_come_from_arrays_or_comma_separated_strings() {
    let loaded = load_pairs(&[("HELLO__SERVER__TRUSTED_PROXIES", "10.0.0.0/8, ::1/128")]).unwrap();
    let proxies: Vec<String> = loaded
        .platform
        .server
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(proxies, ["10.0.0.0/8", "::1/128"]);
    let error = load_pairs(&[("HELLO__SERVER__TRUSTED_PROXIES", "10.0.0.0/33")]).unwrap_err();
    assert!(error.to_string().contains("10.0.0.0/33"), "{error}");

    let dir = std::env::temp_dir().join(format!("platform-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hello.toml");
    std::fs::write(&file, "[server]\ntrusted_proxies = [\"192.168.0.0/16\"]\n").unwrap();
    let source = Source {
        file: Some(file),
        ..Source::default()
    };
    let loaded = load::<NoServiceSettings>("hello", &hello_defaults(), &source).unwrap();
    assert_eq!(loaded.platform.server.trusted_proxies.len(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn rendering_redacts_passwords() {
    let loaded = load_pairs(&[(
        "HELLO__STORAGE__URL",
        "postgres://app:hunter2@127.0.0.1/app",
    )])
    .unwrap();
    let text = render(&loaded).unwrap();
    assert!(text.contains("postgres://app:***@127.0.0.1/app"), "{text}");
    assert!(!text.contains("hunter2"));
    assert!(!format!("{:?}", loaded.platform).contains("hunter2"));
}
