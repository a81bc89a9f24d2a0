//! Publish/subscribe between replicas: a message published to a topic reaches every current
//! subscriber of that topic in every process, the publisher's included.
//!
//! Delivery is at most once and in the order the broker received the messages; a subscriber
//! that falls behind or loses its broker connection misses messages. Users that must not lose
//! anything number their messages and fill gaps from a [`Log`](super::log::Log), as chat does.
//!
//! Backends: `memory:` ([`memory`], one process), `redis://…` ([`redis`], Redis pub/sub) and
//! `nats://…` or `tls://…` ([`nats`], NATS core), chosen by the scheme of `broker.url` in
//! [`open_pubsub`]. The network ones are wrapped in [`instrumented::InstrumentedPubSub`] and use
//! the default storage timeouts (connect 2 s, operation 3 s).

pub mod instrumented;
pub mod memory;
pub mod nats;
pub mod redis;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use futures::stream::BoxStream;

use super::StorageError;

/// The messages of one topic, from subscription on. Dropping it unsubscribes.
pub struct Subscription {
    messages: BoxStream<'static, Bytes>,
}

impl Subscription {
    /// A subscription reading `messages`; backends wrap their native stream in it.
    pub fn new(messages: BoxStream<'static, Bytes>) -> Subscription {
        Subscription { messages }
    }
}

impl Stream for Subscription {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.messages.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Subscription")
    }
}

/// A broker. Topics are 1 to 128 bytes of `[A-Za-z0-9_-]`; backends refuse others.
#[async_trait]
pub trait PubSub: Send + Sync + 'static {
    /// Publishes `payload` to `topic`. `Ok` means the broker took it, not that anyone read it.
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), StorageError>;
    /// Subscribes to `topic`. The subscription is active when this returns: a message published
    /// afterwards (from any process) is delivered to it. The stream ends when the backend
    /// closes for good; a broken connection is re-established by the backend, with the
    /// messages published meanwhile lost.
    async fn subscribe(&self, topic: &str) -> Result<Subscription, StorageError>;
    /// A cheap round trip that proves the broker answers; feeds `/readyz`.
    async fn ping(&self) -> Result<(), StorageError>;
    /// Whether the client is connected now, as far as it knows without a round trip: `false`
    /// means a publish would fail, so a caller can refuse work it could not undo (chat stores a
    /// message only when it can also publish it). Backends that cannot tell say `true`.
    fn is_connected(&self) -> bool {
        true
    }
    /// The backend's name in metrics and `/info`.
    fn backend(&self) -> &'static str;
}

impl std::fmt::Debug for dyn PubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PubSub({})", self.backend())
    }
}

/// Checks a topic before it becomes part of a channel or subject name.
pub(crate) fn validate_topic(topic: &str) -> Result<(), StorageError> {
    let valid = !topic.is_empty()
        && topic.len() <= 128
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(StorageError::Backend(
            format!("topic `{topic}` must be 1 to 128 of [A-Za-z0-9_-]").into(),
        ))
    }
}

/// Opens the broker named by `url` (`broker.url`) with topics under `namespace`.
///
/// ```
/// # async fn demo() -> Result<(), platform::storage::StorageError> {
/// use futures::StreamExt;
/// let broker = platform::storage::pubsub::open_pubsub("memory:", "chat").await?;
/// let mut lobby = broker.subscribe("lobby").await?;
/// broker.publish("lobby", "hi".into()).await?;
/// assert_eq!(lobby.next().await.as_deref(), Some(&b"hi"[..]));
/// # Ok(()) }
/// ```
pub async fn open_pubsub(url: &str, namespace: &str) -> Result<Arc<dyn PubSub>, StorageError> {
    let defaults = super::ConnectOptions::from(&crate::config::StorageSettings::default());
    open_pubsub_with(url, namespace, &defaults).await
}

/// [`open_pubsub`] with the connection limits of `options`: a service's broker takes those of
/// its `[storage]` section (`connect_timeout`, `operation_timeout`), so one setting bounds how
/// long any backend may keep a request waiting.
pub async fn open_pubsub_with(
    url: &str,
    namespace: &str,
    options: &super::ConnectOptions,
) -> Result<Arc<dyn PubSub>, StorageError> {
    super::validate_namespace(namespace)?;
    let scheme = url.split(':').next().unwrap_or_default();
    let broker: Arc<dyn PubSub> = match scheme {
        "memory" => {
            // In-process, it cannot stall: no timer on every call.
            let broker = Arc::new(memory::MemoryPubSub::default());
            return Ok(Arc::new(instrumented::InstrumentedPubSub::new(
                broker, None,
            )));
        }
        "redis" | "rediss" => Arc::new(redis::RedisPubSub::connect(url, namespace, options).await?),
        "nats" | "tls" => Arc::new(nats::NatsPubSub::connect(url, namespace, options).await?),
        other => {
            return Err(StorageError::InvalidUrl(format!(
                "the broker has no `{other}:` backend; expected one of memory:, redis:, nats:, tls:"
            )));
        }
    };
    Ok(Arc::new(instrumented::InstrumentedPubSub::new(
        broker,
        Some(options.operation_timeout),
    )))
}
