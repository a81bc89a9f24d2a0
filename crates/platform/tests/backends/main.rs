//! Every key–value backend against the one behaviour suite, plus the failure modes the
//! platform promises: a dead server is a fast, temporary error; an unknown scheme is named;
//! every operation is measured.
//!
//! `memory:` and `sqlite:` always run. PostgreSQL, MySQL, Redis, NATS and DynamoDB (an emulator)
//! run when `TEST_POSTGRES_URL`, `TEST_MYSQL_URL`, `TEST_REDIS_URL`, `TEST_NATS_URL` and
//! `TEST_DYNAMODB_URL` are set; otherwise the test says it skipped. When a variable is set, an
//! unreachable server fails the test.
//! The log and pub/sub suites live in `log.rs` and `pubsub.rs`.

// A failed unwrap in a test helper is the test failing, loudly, where it happened.
#![allow(clippy::unwrap_used)]
// Tests read their server URLs from the environment, which `.ci/run` sets; the services
// themselves still read configuration only in `platform::config`.
#![allow(clippy::disallowed_methods)]

mod dynamodb;
mod log;
mod pubsub;
mod servers;
mod startup;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use platform::config::{SecretUrl, StorageSettings};
use platform::storage::behaviour::{kv, unique_namespace};
use platform::storage::mysql::MysqlKeyValue;
use platform::storage::postgres::PostgresKeyValue;
use platform::storage::redis::RedisKeyValue;
use platform::storage::{ConnectOptions, KeyValue, StorageError, open_key_value};

/// Longest a whole suite may take before the test fails as hung.
const SUITE_DEADLINE: Duration = Duration::from_secs(120);

/// Longest opening an unreachable server may take before the test fails as hung.
const FAIL_FAST_DEADLINE: Duration = Duration::from_secs(10);

fn settings(url: &str) -> StorageSettings {
    StorageSettings {
        url: SecretUrl::new(url),
        ..StorageSettings::default()
    }
}

/// The server URL in `variable`, or `None` after saying on stderr that the suite is skipped;
/// under CI an unset variable fails the test instead.
fn server_url(variable: &str, backend: &str) -> Option<String> {
    let url = std::env::var(variable).ok().filter(|url| !url.is_empty());
    let what = format!("{variable} for the {backend} suites");
    if platform::testing::require(&what, url.is_some()) {
        url
    } else {
        None
    }
}

/// Opens `url` through `open_key_value` (so the suite also runs through `Instrumented`) and
/// runs the whole behaviour suite against a fresh namespace.
async fn run_suite(url: &str, namespace: &str) {
    let store = open_key_value(&settings(url), namespace, true)
        .await
        .unwrap_or_else(|error| panic!("cannot open {}: {error}", SecretUrl::new(url)));
    tokio::time::timeout(SUITE_DEADLINE, kv::run_all(store.as_ref()))
        .await
        .expect("the key-value suite hung");
}

fn connect_options() -> ConnectOptions {
    ConnectOptions::from(&StorageSettings::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_key_value_suite() {
    run_suite("memory:", &unique_namespace()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_key_value_suite() {
    let namespace = unique_namespace();
    let file = std::env::temp_dir().join(format!("platform-kv-{}.db", uuid::Uuid::new_v4()));
    run_suite(&format!("sqlite://{}", file.display()), &namespace).await;
    for suffix in ["", "-wal", "-shm"] {
        let mut path = file.clone().into_os_string();
        path.push(suffix);
        // The WAL and shared-memory files may already be gone once the last connection closed.
        let _ = std::fs::remove_file(path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory_key_value_suite() {
    run_suite("sqlite::memory:", &unique_namespace()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_creates_missing_parent_directory_and_keeps_data() {
    let directory = std::env::temp_dir().join(format!("platform-kv-{}", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}/nested/data.db", directory.display());
    let namespace = unique_namespace();
    let store = open_key_value(&settings(&url), &namespace, true)
        .await
        .expect("open");
    store.put("kept", b"value").await.expect("put");
    drop(store);

    let reopened = open_key_value(&settings(&url), &namespace, false)
        .await
        .expect("reopen");
    assert_eq!(
        reopened.get("kept").await.expect("get"),
        Some(b"value".to_vec())
    );
    drop(reopened);
    std::fs::remove_dir_all(&directory).expect("remove the test directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_key_value_suite() {
    let Some(url) = server_url("TEST_POSTGRES_URL", "postgres") else {
        return;
    };
    let namespace = unique_namespace();
    run_suite(&url, &namespace).await;
    let store = PostgresKeyValue::connect(&url, &namespace, false, &connect_options())
        .await
        .expect("reconnect to drop the namespace");
    store.drop_namespace().await.expect("drop the namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_migrations_of_one_namespace_succeed() {
    let Some(url) = server_url("TEST_POSTGRES_URL", "postgres") else {
        return;
    };
    let namespace = unique_namespace();
    let options = connect_options();
    let opens = (0..4).map(|_| PostgresKeyValue::connect(&url, &namespace, true, &options));
    let stores = futures::future::join_all(opens).await;
    for store in &stores {
        assert!(
            store.is_ok(),
            "a concurrent migration failed: {:?}",
            store.as_ref().err()
        );
    }
    if let Some(Ok(store)) = stores.first() {
        store.drop_namespace().await.expect("drop the namespace");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_key_value_suite() {
    let Some(url) = server_url("TEST_MYSQL_URL", "mysql") else {
        return;
    };
    let namespace = unique_namespace();
    run_suite(&url, &namespace).await;
    let store = MysqlKeyValue::connect(&url, &namespace, false, &connect_options())
        .await
        .expect("reconnect to drop the namespace");
    store.drop_namespace().await.expect("drop the namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_rejects_keys_longer_than_its_column() {
    let Some(url) = server_url("TEST_MYSQL_URL", "mysql") else {
        return;
    };
    let namespace = unique_namespace();
    let store = MysqlKeyValue::connect(&url, &namespace, true, &connect_options())
        .await
        .expect("connect");
    let longest = "k".repeat(platform::storage::mysql::MAX_KEY_BYTES);
    store
        .put(&longest, b"fits")
        .await
        .expect("a key of exactly the limit fits");
    assert_eq!(
        store.get(&longest).await.expect("get"),
        Some(b"fits".to_vec())
    );

    let too_long = format!("{longest}k");
    let error = store
        .put(&too_long, b"too long")
        .await
        .expect_err("a longer key is refused");
    assert!(matches!(error, StorageError::Backend(_)), "{error:?}");
    assert!(error.to_string().contains("512"), "{error}");
    // Nothing was truncated into the key of exactly the limit.
    assert_eq!(
        store.get(&longest).await.expect("get"),
        Some(b"fits".to_vec())
    );
    store.drop_namespace().await.expect("drop the namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_scheme_is_accepted() {
    let Some(url) = server_url("TEST_MYSQL_URL", "mysql") else {
        return;
    };
    let url = url.replacen("mysql:", "mariadb:", 1);
    let store = open_key_value(&settings(&url), &unique_namespace(), false)
        .await
        .expect("open through mariadb://");
    assert_eq!(store.backend(), "mysql");
    store.ping().await.expect("ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_key_value_suite() {
    let Some(url) = server_url("TEST_REDIS_URL", "redis") else {
        return;
    };
    let namespace = unique_namespace();
    run_suite(&url, &namespace).await;
    let store = RedisKeyValue::connect(&url, &namespace, &connect_options())
        .await
        .expect("reconnect to drop the namespace");
    store.drop_namespace().await.expect("drop the namespace");
    let page = store.scan(None, 10).await.expect("scan after drop");
    assert!(
        page.entries.is_empty(),
        "keys left after drop_namespace: {page:?}"
    );
}

/// Opens `url` with a 500 ms connect timeout and expects a temporary error, well before the
/// deadline that would mean a hang.
async fn assert_unreachable_is_temporary(url: &str) {
    let settings = StorageSettings {
        url: SecretUrl::new(url),
        connect_timeout: Duration::from_millis(500),
        ..StorageSettings::default()
    };
    let opened = tokio::time::timeout(FAIL_FAST_DEADLINE, open_key_value(&settings, "dead", true))
        .await
        .unwrap_or_else(|_| panic!("opening {url} hung"));
    match opened {
        Ok(_) => panic!("opening {url} succeeded, but nothing listens there"),
        Err(error) => assert!(error.is_temporary(), "{url}: {error:?} is not temporary"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_fails_fast_and_temporarily() {
    assert_unreachable_is_temporary("postgres://postgres@127.0.0.1:1/test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_mysql_fails_fast_and_temporarily() {
    assert_unreachable_is_temporary("mysql://root@127.0.0.1:1/test").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_fails_fast_and_temporarily() {
    assert_unreachable_is_temporary("redis://127.0.0.1:1").await;
}

/// The error of opening `url` as `namespace`.
async fn open_error(url: &str, namespace: &str) -> StorageError {
    open_key_value(&settings(url), namespace, true)
        .await
        .expect_err("opening must fail")
}

#[tokio::test]
async fn unknown_scheme_is_an_invalid_url_naming_it() {
    match open_error("ftp://x", "hello").await {
        StorageError::InvalidUrl(message) => assert!(message.contains("ftp"), "{message}"),
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_namespace_is_refused() {
    let error = open_error("sqlite::memory:", "Robert'); DROP TABLE").await;
    assert!(matches!(error, StorageError::InvalidUrl(_)), "{error:?}");
}

/// The process-wide Prometheus recorder; installed once because a recorder is global.
fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).expect("no other recorder in this binary");
        handle
    })
}

#[tokio::test]
async fn instrumented_records_operation_durations() {
    let handle = prometheus();
    let store = open_key_value(&settings("memory:"), &unique_namespace(), true)
        .await
        .expect("open");
    assert_eq!(store.get("absent").await.expect("get"), None);
    store.put("present", b"1").await.expect("put");

    let rendered = handle.render();
    let has_series = |operation: &str, outcome: &str| {
        // Handles are registered up front, so only a non-zero count proves a recording.
        rendered.lines().any(|line| {
            line.starts_with("db_client_operation_duration_seconds_count")
                && line.contains("db_system_name=\"memory\"")
                && line.contains(&format!("db_operation_name=\"{operation}\""))
                && line.contains(&format!("outcome=\"{outcome}\""))
                && !line.ends_with(" 0")
        })
    };
    assert!(
        has_series("get", "not_found"),
        "no get/not_found series in:\n{rendered}"
    );
    assert!(has_series("put", "ok"), "no put/ok series in:\n{rendered}");
}

#[tokio::test]
async fn instrumented_turns_a_slow_operation_into_unavailable() {
    let store = platform::storage::instrumented::Instrumented::new(
        Arc::new(Stalled),
        Some(Duration::from_millis(50)),
    );
    let error = tokio::time::timeout(FAIL_FAST_DEADLINE, store.get("key"))
        .await
        .expect("the timeout must fire before the deadline")
        .expect_err("a stalled backend cannot answer");
    assert!(error.is_temporary(), "{error:?}");
    assert!(error.to_string().contains("timed out"), "{error}");
}

/// A backend whose every operation waits forever, like a server that accepted the connection
/// and then stopped answering.
struct Stalled;

#[async_trait::async_trait]
impl KeyValue for Stalled {
    async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, StorageError> {
        std::future::pending().await
    }
    async fn put(&self, _: &str, _: &[u8]) -> Result<(), StorageError> {
        std::future::pending().await
    }
    async fn put_if_absent(&self, _: &str, _: &[u8]) -> Result<bool, StorageError> {
        std::future::pending().await
    }
    async fn delete(&self, _: &str) -> Result<bool, StorageError> {
        std::future::pending().await
    }
    async fn scan(
        &self,
        _: Option<&str>,
        _: usize,
    ) -> Result<platform::storage::ScanPage, StorageError> {
        std::future::pending().await
    }
    async fn write_batch(
        &self,
        _: &[platform::storage::BatchWrite],
    ) -> Result<platform::storage::BatchOutcome, StorageError> {
        std::future::pending().await
    }
    async fn ping(&self) -> Result<(), StorageError> {
        std::future::pending().await
    }
    fn backend(&self) -> &'static str {
        "stalled"
    }
}

/// A TCP forwarder in front of a real server that the test can cut and restore, to play a
/// server that goes away and comes back on the same address.
struct Proxy {
    port: u16,
    upstream: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let mut proxy = Proxy {
            port,
            upstream,
            task: None,
        };
        proxy.task = Some(tokio::spawn(forward(listener, proxy.upstream.clone())));
        proxy
    }

    /// A proxy to the server of `url` and `url` rewritten to go through it.
    async fn in_front_of(url: &str, default_port: u16) -> (Proxy, url::Url) {
        let mut proxied = url::Url::parse(url).expect("server url");
        let host = proxied
            .host_str()
            .expect("server url has a host")
            .to_owned();
        let port = proxied.port().unwrap_or(default_port);
        let proxy = Proxy::start(format!("{host}:{port}")).await;
        proxied
            .set_host(Some("127.0.0.1"))
            .expect("set the proxy host");
        proxied
            .set_port(Some(proxy.port))
            .expect("set the proxy port");
        (proxy, proxied)
    }

    /// Closes the listener and every forwarded connection, as a crashed server would.
    async fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the proxy on its old port");
        self.task = Some(tokio::spawn(forward(listener, self.upstream.clone())));
    }
}

/// Accepts connections and pipes each to `upstream`; aborting this task drops the `JoinSet`,
/// which aborts every connection with it.
async fn forward(listener: tokio::net::TcpListener, upstream: String) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        let upstream = upstream.clone();
        connections.spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

/// Runs `url`'s backend through a proxy, cuts the proxy, and expects temporary errors while it
/// is down and working operations, on the same store, once it is back. Returns the namespace
/// it used, for the caller to drop.
async fn assert_recovers_after_outage(url: &str, default_port: u16) -> String {
    let (mut proxy, proxied) = Proxy::in_front_of(url, default_port).await;

    let settings = StorageSettings {
        url: SecretUrl::new(proxied.as_str()),
        connect_timeout: Duration::from_millis(500),
        operation_timeout: Duration::from_secs(2),
        ..StorageSettings::default()
    };
    let namespace = unique_namespace();
    let store = open_key_value(&settings, &namespace, true)
        .await
        .expect("open through the proxy");
    store
        .put("survivor", b"still here")
        .await
        .expect("put before the outage");

    proxy.cut().await;
    // The first call finds the broken connection; the second one the failed reconnection.
    for attempt in ["first", "second"] {
        let during = tokio::time::timeout(FAIL_FAST_DEADLINE, store.get("survivor"))
            .await
            .unwrap_or_else(|_| panic!("the {attempt} operation during the outage hung"));
        match during {
            Ok(value) => panic!("read {value:?} through a cut connection"),
            Err(error) => assert!(
                error.is_temporary(),
                "{attempt}: {error:?} during the outage"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    proxy.restore().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut last = None;
    while tokio::time::Instant::now() < deadline {
        match store.get("survivor").await {
            Ok(value) => {
                assert_eq!(value, Some(b"still here".to_vec()));
                store
                    .delete("survivor")
                    .await
                    .expect("delete after recovery");
                return namespace;
            }
            Err(error) => last = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the store did not recover after the server came back: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_recovers_after_an_outage() {
    let Some(url) = server_url("TEST_POSTGRES_URL", "postgres") else {
        return;
    };
    let namespace = assert_recovers_after_outage(&url, 5432).await;
    let store = PostgresKeyValue::connect(&url, &namespace, false, &connect_options())
        .await
        .expect("reconnect to drop the namespace");
    store.drop_namespace().await.expect("drop the namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_recovers_after_an_outage() {
    let Some(url) = server_url("TEST_MYSQL_URL", "mysql") else {
        return;
    };
    let namespace = assert_recovers_after_outage(&url, 3306).await;
    let store = MysqlKeyValue::connect(&url, &namespace, false, &connect_options())
        .await
        .expect("reconnect to drop the namespace");
    store.drop_namespace().await.expect("drop the namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_recovers_after_an_outage() {
    let Some(url) = server_url("TEST_REDIS_URL", "redis") else {
        return;
    };
    let namespace = assert_recovers_after_outage(&url, 6379).await;
    let store = RedisKeyValue::connect(&url, &namespace, &connect_options())
        .await
        .expect("reconnect to drop the namespace");
    store.drop_namespace().await.expect("drop the namespace");
}
