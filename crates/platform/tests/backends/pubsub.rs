//! Every broker against the pub/sub behaviour suite, two brokers of one namespace as two
//! replicas, a subscription that outlives a broker outage, and the failure modes: a dead
//! server is a fast, temporary error; an unknown scheme is named.
//!
//! NATS runs when `TEST_NATS_URL` is set (`nats://127.0.0.1:4222` on the dev machine).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use platform::storage::StorageError;
use platform::storage::behaviour::{pubsub as behaviour, unique_namespace};
use platform::storage::pubsub::{PubSub, open_pubsub};

use super::{FAIL_FAST_DEADLINE, Proxy, SUITE_DEADLINE, server_url};

async fn open(url: &str, namespace: &str) -> Arc<dyn PubSub> {
    open_pubsub(url, namespace)
        .await
        .unwrap_or_else(|error| panic!("cannot open the broker: {error}"))
}

/// Runs the suite against one broker of `url`, then the replica behaviour between two.
async fn run_suite(url: &str) {
    let namespace = unique_namespace();
    let (first, second) = (open(url, &namespace).await, open(url, &namespace).await);
    tokio::time::timeout(SUITE_DEADLINE, async {
        behaviour::run_all(first.as_ref()).await;
        behaviour::replicas_see_each_other(first.as_ref(), second.as_ref()).await;
    })
    .await
    .expect("the pub/sub suite hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_pubsub_suite() {
    // Two `memory:` brokers are two separate processes' worth of topics: no replicas here.
    let broker = open("memory:", &unique_namespace()).await;
    tokio::time::timeout(SUITE_DEADLINE, behaviour::run_all(broker.as_ref()))
        .await
        .expect("the pub/sub suite hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pubsub_suite() {
    let Some(url) = server_url("TEST_REDIS_URL", "redis") else {
        return;
    };
    run_suite(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_pubsub_suite() {
    let Some(url) = server_url("TEST_NATS_URL", "nats") else {
        return;
    };
    run_suite(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_isolated() {
    let Some(url) = server_url("TEST_REDIS_URL", "redis") else {
        return;
    };
    let (mine, theirs) = (
        open(&url, &unique_namespace()).await,
        open(&url, &unique_namespace()).await,
    );
    let mut subscription = mine.subscribe("shared-name").await.expect("subscribe");
    theirs
        .publish("shared-name", "theirs".into())
        .await
        .expect("publish theirs");
    mine.publish("shared-name", "mine".into())
        .await
        .expect("publish mine");
    let first = tokio::time::timeout(behaviour::DELIVERY_DEADLINE, subscription.next())
        .await
        .expect("a message in time");
    assert_eq!(first.as_deref(), Some(&b"mine"[..]));
}

/// Opens the broker at `url` and expects a temporary error, well before the deadline that
/// would mean a hang.
async fn assert_unreachable_is_temporary(url: &str) {
    let opened = tokio::time::timeout(FAIL_FAST_DEADLINE, open_pubsub(url, "dead"))
        .await
        .unwrap_or_else(|_| panic!("opening the broker at {url} hung"));
    match opened {
        Ok(_) => panic!("opening the broker at {url} succeeded, but nothing listens there"),
        Err(error) => assert!(error.is_temporary(), "{url}: {error:?} is not temporary"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_broker_fails_fast_and_temporarily() {
    assert_unreachable_is_temporary("redis://127.0.0.1:1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_nats_broker_fails_fast_and_temporarily() {
    assert_unreachable_is_temporary("nats://127.0.0.1:1").await;
}

#[tokio::test]
async fn unknown_broker_scheme_is_an_invalid_url_naming_it() {
    match open_pubsub("kafka://127.0.0.1:9092", "chat").await {
        Err(StorageError::InvalidUrl(message)) => assert!(message.contains("kafka"), "{message}"),
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
}

/// Subscribes through a proxy to `url`'s server, cuts the proxy, restores it, and expects the
/// same subscription to receive again, published by a second broker that never lost its
/// connection. Messages published during the outage may be lost; the test keeps publishing
/// until one arrives.
async fn assert_subscription_survives_outage(url: &str, default_port: u16) {
    let namespace = unique_namespace();
    let (mut proxy, proxied) = Proxy::in_front_of(url, default_port).await;
    let direct = open(url, &namespace).await;
    let through_proxy = open(proxied.as_str(), &namespace).await;
    let mut subscription = through_proxy.subscribe("outage").await.expect("subscribe");
    direct
        .publish("outage", "before".into())
        .await
        .expect("publish before");
    let before = tokio::time::timeout(behaviour::DELIVERY_DEADLINE, subscription.next()).await;
    assert_eq!(before.expect("in time").as_deref(), Some(&b"before"[..]));

    proxy.cut().await;
    // Whatever the broker answers during the outage, it answers in time.
    let during = tokio::time::timeout(
        FAIL_FAST_DEADLINE,
        through_proxy.publish("outage", "lost".into()),
    );
    if let Ok(Err(error)) = during.await {
        assert!(error.is_temporary(), "{error:?} during the outage");
    }
    proxy.restore().await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscription never received again"
        );
        direct
            .publish("outage", "after".into())
            .await
            .expect("publish after");
        match tokio::time::timeout(Duration::from_millis(250), subscription.next()).await {
            Ok(Some(message)) if message.as_ref() == b"after" => return,
            // The message published during the outage, if the broker buffered it.
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => panic!("the subscription ended instead of reconnecting"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_subscription_survives_an_outage() {
    let Some(url) = server_url("TEST_REDIS_URL", "redis") else {
        return;
    };
    assert_subscription_survives_outage(&url, 6379).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_subscription_survives_an_outage() {
    let Some(url) = server_url("TEST_NATS_URL", "nats") else {
        return;
    };
    assert_subscription_survives_outage(&url, 4222).await;
}
