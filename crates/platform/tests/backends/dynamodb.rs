//! DynamoDB (against an emulator, `TEST_DYNAMODB_URL`): the behaviour suite on a table of its
//! own, and what is particular to it: the URL, the bucket count fixed at the first migration,
//! the item size limit, an unreachable endpoint, and a restart of a private emulator.

use std::time::Duration;

use platform::config::SecretUrl;
use platform::storage::behaviour::{kv, unique_namespace};
use platform::storage::dynamodb::{DynamoDbKeyValue, MAX_BATCH_KEYS};
use platform::storage::{BatchWrite, KeyValue, StorageError, open_key_value};
use platform::testing::{Backend, Server, ServerProcess};

use crate::{FAIL_FAST_DEADLINE, SUITE_DEADLINE, connect_options, settings};

/// moto counts a binary value as its base64 text against the 400 KB item limit, so about
/// 300 KB fit there; a real table takes up to 400 KB less the key.
const LARGEST_VALUE: usize = 256 * 1024;

/// `TEST_DYNAMODB_URL` with a table of its own, or `None` (skipped, or failed under CI).
fn dynamodb_url() -> Option<String> {
    Backend::DynamoDb.storage_url("backends")
}

async fn open(url: &str, namespace: &str) -> DynamoDbKeyValue {
    DynamoDbKeyValue::connect(url, namespace, true, &connect_options())
        .await
        .unwrap_or_else(|error| panic!("cannot open {url}: {error}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_key_value_suite() {
    let Some(url) = dynamodb_url() else {
        return;
    };
    let store = open_key_value(&settings(&url), &unique_namespace(), true)
        .await
        .unwrap_or_else(|error| panic!("cannot open {}: {error}", SecretUrl::new(&url)));
    let limits = kv::Limits {
        largest_value: LARGEST_VALUE,
    };
    tokio::time::timeout(SUITE_DEADLINE, kv::run_all_within(store.as_ref(), limits))
        .await
        .expect("the key-value suite hung");
    open(&url, "cleanup")
        .await
        .drop_table()
        .await
        .expect("drop the table");
}

/// Namespaces share the table without seeing each other's keys, each over its own buckets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_namespaces_share_a_table_apart() {
    let Some(url) = dynamodb_url() else {
        return;
    };
    let first = open(&url, "first").await;
    let second = open(&format!("{url}&buckets=3"), "second").await;
    assert_eq!(first.buckets(), 16);
    assert_eq!(second.buckets(), 3);
    for n in 0..10 {
        first.put(&format!("key{n}"), b"first").await.unwrap();
    }
    second.put("key0", b"second").await.unwrap();
    assert_eq!(
        first.get("key0").await.unwrap().as_deref(),
        Some(&b"first"[..])
    );
    assert_eq!(
        second.get("key0").await.unwrap().as_deref(),
        Some(&b"second"[..])
    );
    assert_eq!(first.scan(None, 100).await.unwrap().entries.len(), 10);
    assert_eq!(second.scan(None, 100).await.unwrap().entries.len(), 1);

    // Reopening without `buckets=` uses the recorded count; asking for another is refused.
    let reopened = DynamoDbKeyValue::connect(&url, "second", false, &connect_options())
        .await
        .unwrap();
    assert_eq!(reopened.buckets(), 3);
    assert_eq!(
        reopened.get("key0").await.unwrap().as_deref(),
        Some(&b"second"[..])
    );
    let error = DynamoDbKeyValue::connect(
        &format!("{url}&buckets=4"),
        "second",
        true,
        &connect_options(),
    )
    .await
    .expect_err("another bucket count is refused");
    assert!(
        matches!(&error, StorageError::InvalidUrl(message) if message.contains("buckets=4")),
        "{error:?}"
    );
    first.drop_table().await.unwrap();
}

/// Without `migrate`, a missing table or namespace is a start-up error that says to migrate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_without_migrate_needs_the_table_and_the_namespace() {
    let Some(url) = dynamodb_url() else {
        return;
    };
    let missing = DynamoDbKeyValue::connect(&url, "absent", false, &connect_options())
        .await
        .expect_err("no table yet");
    assert!(
        missing.to_string().contains("ResourceNotFound"),
        "{missing}"
    );
    let store = open(&url, "present").await;
    let error = DynamoDbKeyValue::connect(&url, "absent", false, &connect_options())
        .await
        .expect_err("no namespace yet");
    assert!(matches!(error, StorageError::Backend(_)), "{error:?}");
    assert!(error.to_string().contains("migrate"), "{error}");
    store.drop_table().await.unwrap();
}

/// A value over the item limit and a batch over the transaction limit are refused as backend
/// errors (500s, not 503s: retrying cannot help), and store nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_refuses_what_its_limits_exclude() {
    let Some(url) = dynamodb_url() else {
        return;
    };
    let store = open(&url, "limits").await;
    let error = store
        .put("big", &vec![7u8; 500 * 1024])
        .await
        .expect_err("500 KiB is over the item limit");
    assert!(matches!(error, StorageError::Backend(_)), "{error:?}");
    assert_eq!(store.get("big").await.unwrap(), None);

    let batch: Vec<BatchWrite> = (0..=MAX_BATCH_KEYS)
        .map(|n| BatchWrite::put(format!("batch{n:03}"), b"x".to_vec()))
        .collect();
    let error = store.write_batch(&batch).await.expect_err("101 keys");
    assert!(matches!(error, StorageError::Backend(_)), "{error:?}");
    assert!(store.scan(None, 10).await.unwrap().entries.is_empty());
    store.drop_table().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_dynamodb_fails_fast_and_temporarily() {
    let settings = platform::config::StorageSettings {
        url: SecretUrl::new("dynamodb://absent?region=us-east-1&endpoint=http://127.0.0.1:1"),
        connect_timeout: Duration::from_millis(500),
        operation_timeout: Duration::from_secs(1),
        ..platform::config::StorageSettings::default()
    };
    let opened = tokio::time::timeout(FAIL_FAST_DEADLINE, open_key_value(&settings, "dead", true))
        .await
        .expect("opening an unreachable endpoint hung");
    match opened {
        Ok(_) => panic!("opening succeeded, but nothing listens there"),
        Err(error) => assert!(error.is_temporary(), "{error:?} is not temporary"),
    }
}

/// A private moto stopped and started again: calls fail fast and temporarily while it is
/// down, and the same store works again once it is back (its table created again: moto keeps
/// nothing across a restart, so only recovery is asserted, not the data).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_dynamodb_recovers_after_a_restart() {
    if dynamodb_url().is_none() {
        return;
    }
    let Some(mut process) = ServerProcess::start_new(Server::DynamoDb).await else {
        return;
    };
    let settings = platform::config::StorageSettings {
        url: SecretUrl::new(process.url()),
        connect_timeout: Duration::from_millis(500),
        operation_timeout: Duration::from_secs(1),
        ..platform::config::StorageSettings::default()
    };
    let store = open_key_value(&settings, "restart", true)
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", process.log_tail()));
    store.put("before", b"stop").await.unwrap();

    process.stop().await;
    let started = std::time::Instant::now();
    let during = store.get("before").await;
    assert!(
        matches!(during, Err(StorageError::Unavailable(_))),
        "{during:?}"
    );
    assert!(started.elapsed() < FAIL_FAST_DEADLINE);

    process.start().await;
    platform::testing::eventually(|| async { store.put("after", b"start").await.is_ok() }).await;
    assert_eq!(
        store.get("after").await.unwrap().as_deref(),
        Some(&b"start"[..])
    );
    assert_eq!(
        store.get("before").await.unwrap(),
        None,
        "moto forgets across a restart"
    );
}
