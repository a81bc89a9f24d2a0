//! The behaviour suite of [`PubSub`]: what every broker must do, one function per rule.
//!
//! Each behaviour uses topics of its own, so a run needs a broker of a fresh namespace. Waits
//! for messages are bounded by [`DELIVERY_DEADLINE`]; nothing sleeps to synchronise, because
//! `subscribe` returning is the synchronisation the contract promises.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::storage::StorageError;
use crate::storage::pubsub::{PubSub, Subscription};

/// Longest wait for a message that must arrive.
pub const DELIVERY_DEADLINE: Duration = Duration::from_secs(10);

/// Runs every single-broker behaviour below against `broker`.
pub async fn run_all(broker: &dyn PubSub) {
    subscriber_receives_in_order(broker).await;
    every_subscriber_receives(broker).await;
    topics_are_isolated(broker).await;
    dropping_a_subscription_unsubscribes(broker).await;
    resubscribing_after_the_last_drop_receives(broker).await;
    burst_of_a_thousand_arrives_in_order(broker).await;
    large_payload_round_trips(broker).await;
    invalid_topics_are_refused(broker).await;
    ping_succeeds(broker).await;
    replicas_see_each_other(broker, broker).await;
}

/// A subscriber receives what is published after `subscribe` returned, in order, the
/// publisher's own messages included.
pub async fn subscriber_receives_in_order(broker: &dyn PubSub) {
    let mut subscription = ok(broker.subscribe("order").await, "subscribe");
    for n in 0..5 {
        ok(
            broker.publish("order", format!("m{n}").into()).await,
            "publish",
        );
    }
    for n in 0..5 {
        assert_eq!(
            next(&mut subscription, "order").await,
            format!("m{n}").as_bytes()
        );
    }
}

/// Two subscribers of one topic both receive every message.
pub async fn every_subscriber_receives(broker: &dyn PubSub) {
    let mut first = ok(broker.subscribe("fan-out").await, "first subscribe");
    let mut second = ok(broker.subscribe("fan-out").await, "second subscribe");
    ok(broker.publish("fan-out", "hello".into()).await, "publish");
    assert_eq!(next(&mut first, "first").await, &b"hello"[..]);
    assert_eq!(next(&mut second, "second").await, &b"hello"[..]);
}

/// A subscriber receives nothing published to another topic: the other topic's message,
/// published first, would otherwise arrive before its own.
pub async fn topics_are_isolated(broker: &dyn PubSub) {
    let mut left = ok(broker.subscribe("left").await, "subscribe left");
    let mut right = ok(broker.subscribe("right").await, "subscribe right");
    ok(
        broker.publish("right", "for right".into()).await,
        "publish right",
    );
    ok(
        broker.publish("left", "for left".into()).await,
        "publish left",
    );
    assert_eq!(next(&mut left, "left").await, &b"for left"[..]);
    assert_eq!(next(&mut right, "right").await, &b"for right"[..]);
}

/// Dropping the only subscription unsubscribes; publishing to the topic still succeeds, and
/// another subscription of the topic keeps receiving.
pub async fn dropping_a_subscription_unsubscribes(broker: &dyn PubSub) {
    let mut kept = ok(broker.subscribe("dropped").await, "subscribe kept");
    let gone = ok(broker.subscribe("dropped").await, "subscribe dropped");
    drop(gone);
    ok(
        broker.publish("dropped", "one".into()).await,
        "publish with one left",
    );
    assert_eq!(next(&mut kept, "kept").await, &b"one"[..]);
    drop(kept);
    ok(
        broker.publish("dropped", "none".into()).await,
        "publish with none left",
    );
}

/// A topic whose last subscriber just left can be subscribed again at once and delivers.
pub async fn resubscribing_after_the_last_drop_receives(broker: &dyn PubSub) {
    for round in 0..3 {
        let mut subscription = ok(broker.subscribe("again").await, "subscribe");
        ok(
            broker.publish("again", format!("r{round}").into()).await,
            "publish",
        );
        assert_eq!(
            next(&mut subscription, "again").await,
            format!("r{round}").as_bytes()
        );
    }
}

/// A thousand messages published back to back all arrive, in order.
pub async fn burst_of_a_thousand_arrives_in_order(broker: &dyn PubSub) {
    let mut subscription = ok(broker.subscribe("burst").await, "subscribe");
    for n in 0u32..1000 {
        ok(
            broker
                .publish("burst", Bytes::copy_from_slice(&n.to_be_bytes()))
                .await,
            "publish",
        );
    }
    let received = tokio::time::timeout(DELIVERY_DEADLINE, async {
        let mut received = Vec::with_capacity(1000);
        while received.len() < 1000 {
            let Some(message) = subscription.next().await else {
                break;
            };
            received.push(u32::from_be_bytes(
                message.as_ref().try_into().expect("a 4-byte message"),
            ));
        }
        received
    })
    .await
    .expect("the burst did not arrive in time");
    assert_eq!(received, (0..1000).collect::<Vec<_>>());
}

/// A 64 KiB payload of every byte value arrives unchanged.
pub async fn large_payload_round_trips(broker: &dyn PubSub) {
    let payload: Vec<u8> = (0..64 * 1024u32).map(|n| (n % 256) as u8).collect();
    let mut subscription = ok(broker.subscribe("large").await, "subscribe");
    ok(
        broker.publish("large", payload.clone().into()).await,
        "publish",
    );
    assert!(
        next(&mut subscription, "large").await == payload,
        "the payload changed"
    );
}

/// Topics outside 1 to 128 of `[A-Za-z0-9_-]` are refused by `publish` and `subscribe`.
pub async fn invalid_topics_are_refused(broker: &dyn PubSub) {
    let too_long = "t".repeat(129);
    for topic in ["", "a.b", "a:b", "a b", "a*", ">", "ü", too_long.as_str()] {
        match broker.publish(topic, "x".into()).await {
            Err(StorageError::Backend(_)) => {}
            other => panic!("publish to {topic:?} gave {other:?}"),
        }
        match broker.subscribe(topic).await {
            Err(StorageError::Backend(_)) => {}
            other => panic!("subscribe to {topic:?} gave {other:?}"),
        }
    }
}

/// `ping` succeeds against a healthy broker.
pub async fn ping_succeeds(broker: &dyn PubSub) {
    ok(broker.ping().await, "ping");
}

/// Two brokers of one namespace (two replicas) each receive what either publishes.
pub async fn replicas_see_each_other(first: &dyn PubSub, second: &dyn PubSub) {
    let mut on_first = ok(first.subscribe("replicas").await, "subscribe first");
    let mut on_second = ok(second.subscribe("replicas").await, "subscribe second");
    ok(
        first.publish("replicas", "from first".into()).await,
        "publish first",
    );
    ok(
        second.publish("replicas", "from second".into()).await,
        "publish second",
    );
    for (subscription, name) in [(&mut on_first, "first"), (&mut on_second, "second")] {
        let mut got = vec![
            next(subscription, name).await,
            next(subscription, name).await,
        ];
        got.sort();
        assert_eq!(got, [&b"from first"[..], &b"from second"[..]], "on {name}");
    }
}

/// The next message of `subscription`, failing the test when none comes in time.
async fn next(subscription: &mut Subscription, what: &str) -> Bytes {
    match tokio::time::timeout(DELIVERY_DEADLINE, subscription.next()).await {
        Ok(Some(message)) => message,
        Ok(None) => panic!("the subscription {what} ended"),
        Err(_) => panic!("no message on {what} within {DELIVERY_DEADLINE:?}"),
    }
}

fn ok<T>(result: Result<T, StorageError>, what: &str) -> T {
    result.unwrap_or_else(|error| panic!("{what} failed: {error} ({error:?})"))
}
