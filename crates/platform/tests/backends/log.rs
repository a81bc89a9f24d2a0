//! Every log backend against the log behaviour suite, two instances of each server backend
//! appending to one stream as two processes would, and the failure modes: a dead server is a
//! fast, temporary error; MySQL is named as having no log.

use std::time::Duration;

use platform::config::{SecretUrl, StorageSettings};
use platform::storage::StorageError;
use platform::storage::behaviour::{log as behaviour, unique_namespace};
use platform::storage::log::postgres::PostgresLog;
use platform::storage::log::redis::RedisLog;
use platform::storage::log::sqlite::SqliteLog;
use platform::storage::log::{Log, open_log};

use super::{FAIL_FAST_DEADLINE, SUITE_DEADLINE, connect_options, server_url, settings};

/// The retention the suite runs with.
const RETAIN: usize = 40;

/// Opens `url` through `open_log` (so the suite also runs through the instrumented wrapper)
/// twice, as two processes would, and runs the suite and the two-instance behaviour.
async fn run_suite(url: &str, namespace: &str) {
    let open = || async {
        open_log(&settings(url), namespace, RETAIN, true)
            .await
            .unwrap_or_else(|error| panic!("cannot open {}: {error}", SecretUrl::new(url)))
    };
    let (first, second) = (open().await, open().await);
    tokio::time::timeout(SUITE_DEADLINE, async {
        behaviour::run_all(first.as_ref(), RETAIN).await;
        behaviour::concurrent_appends_get_distinct_consecutive_numbers(
            &[first.as_ref(), second.as_ref()],
            "concurrent-two",
        )
        .await;
    })
    .await
    .expect("the log suite hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_log_suite() {
    let log = open_log(&settings("memory:"), &unique_namespace(), RETAIN, true)
        .await
        .expect("open");
    tokio::time::timeout(SUITE_DEADLINE, behaviour::run_all(log.as_ref(), RETAIN))
        .await
        .expect("the log suite hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_log_suite() {
    let namespace = unique_namespace();
    let file = std::env::temp_dir().join(format!("platform-log-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}", file.display());
    run_suite(&url, &namespace).await;
    let log = SqliteLog::connect(&url, &namespace, RETAIN, false, &connect_options())
        .await
        .expect("reopen to drop the namespace");
    log.drop_namespace().await.expect("drop the namespace");
    log.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let mut path = file.clone().into_os_string();
        path.push(suffix);
        // The WAL and shared-memory files may already be gone once the last connection closed.
        let _ = std::fs::remove_file(path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_log_keeps_entries_across_reopening() {
    let file = std::env::temp_dir().join(format!("platform-log-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}", file.display());
    let namespace = unique_namespace();
    let log = open_log(&settings(&url), &namespace, RETAIN, true)
        .await
        .expect("open");
    assert_eq!(
        log.append("kept", &[b"one".to_vec()])
            .await
            .expect("append"),
        1
    );
    drop(log);
    let reopened = open_log(&settings(&url), &namespace, RETAIN, false)
        .await
        .expect("reopen");
    assert_eq!(
        reopened
            .append("kept", &[b"two".to_vec()])
            .await
            .expect("append"),
        2
    );
    let read = reopened.read_after("kept", 0, 10).await.expect("read");
    assert_eq!(read.len(), 2);
    drop(reopened);
    let _ = std::fs::remove_file(&file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_log_suite() {
    let Some(url) = server_url("TEST_POSTGRES_URL", "postgres") else {
        return;
    };
    let namespace = unique_namespace();
    run_suite(&url, &namespace).await;
    let log = PostgresLog::connect(&url, &namespace, RETAIN, false, &connect_options())
        .await
        .expect("reconnect to drop the namespace");
    log.drop_namespace().await.expect("drop the namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_log_suite() {
    let Some(url) = server_url("TEST_REDIS_URL", "redis") else {
        return;
    };
    let namespace = unique_namespace();
    run_suite(&url, &namespace).await;
    let log = RedisLog::connect(&url, &namespace, RETAIN, &connect_options())
        .await
        .expect("reconnect to drop the namespace");
    log.drop_namespace().await.expect("drop the namespace");
    assert!(
        log.read_after("first", 0, 10)
            .await
            .expect("read after drop")
            .is_empty(),
        "entries left after drop_namespace"
    );
}

/// Opens the log at `url` with a 500 ms connect timeout and expects a temporary error, well
/// before the deadline that would mean a hang.
async fn assert_unreachable_is_temporary(url: &str) {
    let settings = StorageSettings {
        url: SecretUrl::new(url),
        connect_timeout: Duration::from_millis(500),
        ..StorageSettings::default()
    };
    let opened = tokio::time::timeout(
        FAIL_FAST_DEADLINE,
        open_log(&settings, "dead", RETAIN, true),
    )
    .await
    .unwrap_or_else(|_| panic!("opening the log at {url} hung"));
    match opened {
        Ok(_) => panic!("opening the log at {url} succeeded, but nothing listens there"),
        Err(error) => assert!(error.is_temporary(), "{url}: {error:?} is not temporary"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_log_fails_fast_and_temporarily() {
    assert_unreachable_is_temporary("postgres://postgres@127.0.0.1:1/test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_log_fails_fast_and_temporarily() {
    assert_unreachable_is_temporary("redis://127.0.0.1:1").await;
}

#[tokio::test]
async fn mysql_has_no_log_and_says_so() {
    let error = open_log(
        &settings("mysql://root@127.0.0.1:1/test"),
        "chat",
        RETAIN,
        true,
    )
    .await
    .expect_err("MySQL has no log backend");
    match error {
        StorageError::InvalidUrl(message) => assert!(message.contains("mysql"), "{message}"),
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
}

#[tokio::test]
async fn log_operations_are_measured() {
    let handle = super::prometheus();
    let log: std::sync::Arc<dyn Log> =
        open_log(&settings("memory:"), &unique_namespace(), RETAIN, true)
            .await
            .expect("open");
    log.append("measured", &[b"x".to_vec()])
        .await
        .expect("append");
    log.read_last("measured", 1).await.expect("read_last");
    let rendered = handle.render();
    for operation in ["append", "read_last"] {
        assert!(
            rendered.lines().any(|line| line
                .starts_with("db_client_operation_duration_seconds_count")
                && line.contains("db_system_name=\"memory\"")
                && line.contains(&format!("db_operation_name=\"{operation}\""))
                && line.contains("outcome=\"ok\"")
                && !line.ends_with(" 0")),
            "no {operation}/ok series in:\n{rendered}"
        );
    }
}
