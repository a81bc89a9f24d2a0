//! `redis://` — Redis pub/sub between replicas.
//!
//! A topic `t` of namespace `n` is the channel `n:t`. Publishing is `PUBLISH` on a connection
//! manager (the key–value backend's timeouts and reconnection). Subscribing shares one
//! dedicated pub/sub connection per [`RedisPubSub`], whatever the number of topics and
//! subscribers: a background task reads it and hands each message to the subscribers of its
//! channel. The first subscriber of a channel sends `SUBSCRIBE` and waits for the server's
//! confirmation; the last one to drop its [`Subscription`] makes the task send `UNSUBSCRIBE`.
//!
//! Capabilities:
//! - [x] publish, subscribe, unsubscribe on drop; the publisher receives its own messages
//! - [x] `subscribe` returns once the server confirmed the channel, so a message published
//!   afterwards, from any replica, is delivered
//! - [x] order: each subscriber sees a channel's messages in the order the server received them
//! - [x] slow subscribers: each has a queue of [`SUBSCRIBER_CAPACITY`] messages; when it is
//!   full, new messages are dropped for that subscriber only, never blocking the others
//! - [x] reconnects by itself: when the pub/sub connection breaks (or stops answering the
//!   periodic `PING`), the task reconnects with exponential back-off up to
//!   [`RECONNECT_MAX_DELAY`] and subscribes every channel again; messages published meanwhile
//!   are lost, and `subscribe` fails with [`StorageError::Unavailable`] until it is back
//! - [ ] delivery guarantees: at most once, as Redis pub/sub itself
//! - [ ] `rediss://`: needs redis-rs's TLS feature, which this build leaves out

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use redis::aio::{ConnectionManager, PubSubSink, PubSubStream};
use tokio::sync::mpsc;

use super::{PubSub, Subscription, validate_topic};
use crate::storage::redis::{connection_manager, map_redis_error};
use crate::storage::{ConnectOptions, StorageError, validate_namespace};

/// Messages a subscriber may have waiting before new ones are dropped for it.
pub const SUBSCRIBER_CAPACITY: usize = 4096;

/// First wait before reconnecting the pub/sub connection; doubled after each failure.
const RECONNECT_INITIAL_DELAY: Duration = Duration::from_millis(100);

/// Longest wait between two reconnection attempts.
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(5);

/// How often the reader pings an idle-looking pub/sub connection, so a connection that
/// silently died (no reset, no answer) is replaced within about this long.
const HEALTH_INTERVAL: Duration = Duration::from_secs(10);

/// A broker over one Redis server: a publishing connection and one shared subscriber
/// connection, read by a background task that ends when this is dropped.
pub struct RedisPubSub {
    publisher: ConnectionManager,
    prefix: String,
    shared: Arc<Shared>,
    reader: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RedisPubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisPubSub")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What the broker, its subscriptions and the reader task share.
struct Shared {
    /// The subscribers of each channel. A plain mutex: it is held only to copy senders or
    /// edit the list, never across an await.
    routes: Mutex<HashMap<String, Vec<Route>>>,
    /// The pub/sub connection's command half and the channels the server confirmed. Held
    /// across `SUBSCRIBE`/`UNSUBSCRIBE`, so the decision to send one and its outcome are one
    /// step.
    control: tokio::sync::Mutex<Control>,
    /// Channels whose last subscriber left, for the reader task to unsubscribe.
    released: mpsc::UnboundedSender<String>,
    next_route: AtomicU64,
    timeout: Duration,
}

struct Route {
    id: u64,
    sender: mpsc::Sender<Bytes>,
}

#[derive(Default)]
struct Control {
    /// `None` while the connection is down.
    sink: Option<PubSubSink>,
    subscribed: HashSet<String>,
}

/// Removes one subscriber's route when its [`Subscription`] drops.
struct RouteGuard {
    shared: Arc<Shared>,
    channel: String,
    id: u64,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        let mut routes = self.shared.routes();
        let Some(subscribers) = routes.get_mut(&self.channel) else {
            return;
        };
        subscribers.retain(|route| route.id != self.id);
        if subscribers.is_empty() {
            routes.remove(&self.channel);
            // The reader task outlives every guard but the broker's own drop, after which
            // there is nothing to unsubscribe from.
            let _ = self.shared.released.send(self.channel.clone());
        }
    }
}

impl Shared {
    /// The routing table; a poisoned lock (a panic while editing a list) leaves a list that is
    /// still well-formed, so it is used as is.
    fn routes(&self) -> MutexGuard<'_, HashMap<String, Vec<Route>>> {
        self.routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hands a message to every subscriber of its channel without waiting for any.
    fn deliver(&self, message: &redis::Msg) {
        let channel = message.get_channel_name();
        let routes = self.routes();
        let Some(subscribers) = routes.get(channel) else {
            return;
        };
        let payload = Bytes::copy_from_slice(message.get_payload_bytes());
        for route in subscribers {
            if let Err(mpsc::error::TrySendError::Full(_)) = route.sender.try_send(payload.clone())
            {
                tracing::debug!(channel, "A slow subscriber missed a message.");
            }
        }
    }

    /// `command` on the pub/sub connection, bounded by the operation timeout.
    async fn bounded<T>(
        &self,
        what: &str,
        command: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StorageError> {
        match tokio::time::timeout(self.timeout, command).await {
            Ok(result) => result.map_err(map_redis_error),
            Err(_) => Err(StorageError::Unavailable(
                format!("redis {what} timed out after {:?}", self.timeout).into(),
            )),
        }
    }

    /// Makes sure the server sends `channel`'s messages to this connection.
    async fn subscribe(&self, channel: &str) -> Result<(), StorageError> {
        let mut control = self.control.lock().await;
        if control.subscribed.contains(channel) {
            return Ok(());
        }
        let Some(sink) = control.sink.as_mut() else {
            return Err(StorageError::Unavailable(
                "the redis subscriber connection is down; it is reconnecting".into(),
            ));
        };
        self.bounded("SUBSCRIBE", sink.subscribe(channel)).await?;
        control.subscribed.insert(channel.to_owned());
        Ok(())
    }

    /// Unsubscribes `channel` unless a subscriber arrived since its last one left.
    async fn release(&self, channel: &str) {
        let mut control = self.control.lock().await;
        if self.routes().contains_key(channel) {
            return;
        }
        control.subscribed.remove(channel);
        if let Some(sink) = control.sink.as_mut() {
            // A failure here means the connection broke; the reader notices and reconnects,
            // and a new connection subscribes only channels that have subscribers.
            if let Err(error) = self.bounded("UNSUBSCRIBE", sink.unsubscribe(channel)).await {
                tracing::debug!(channel, %error, "Unsubscribing failed.");
            }
        }
    }

    /// Installs a new connection's command half and subscribes every channel with
    /// subscribers on it.
    async fn resubscribe(&self, mut sink: PubSubSink) -> Result<(), StorageError> {
        let mut control = self.control.lock().await;
        let channels: Vec<String> = self.routes().keys().cloned().collect();
        control.subscribed.clear();
        for channel in channels {
            self.bounded("SUBSCRIBE", sink.subscribe(&channel)).await?;
            control.subscribed.insert(channel);
        }
        control.sink = Some(sink);
        Ok(())
    }

    /// Forgets the broken connection, so `subscribe` fails fast until the next one.
    async fn disconnected(&self) {
        let mut control = self.control.lock().await;
        control.sink = None;
        control.subscribed.clear();
    }

    /// A round trip on the pub/sub connection.
    async fn ping(&self) -> Result<(), StorageError> {
        let sink = self.control.lock().await.sink.clone();
        let Some(mut sink) = sink else {
            return Err(StorageError::Unavailable(
                "the redis subscriber connection is down; it is reconnecting".into(),
            ));
        };
        self.bounded("PING", sink.ping::<redis::Value>())
            .await
            .map(|_| ())
    }
}

/// Opens a pub/sub connection within `timeout`.
async fn connect_subscriber(
    client: &redis::Client,
    timeout: Duration,
) -> Result<(PubSubSink, PubSubStream), StorageError> {
    match tokio::time::timeout(timeout, client.get_async_pubsub()).await {
        Ok(connection) => Ok(connection.map_err(map_redis_error)?.split()),
        Err(_) => Err(StorageError::Unavailable(
            format!("redis did not accept a connection within {timeout:?}").into(),
        )),
    }
}

/// The reader task: delivers messages, unsubscribes released channels, pings, and replaces a
/// broken connection, forever.
async fn run(
    shared: Arc<Shared>,
    client: redis::Client,
    connect_timeout: Duration,
    mut messages: PubSubStream,
    mut released: mpsc::UnboundedReceiver<String>,
) {
    let mut health = tokio::time::interval(HEALTH_INTERVAL);
    loop {
        health.reset();
        loop {
            tokio::select! {
                message = messages.next() => match message {
                    Some(message) => shared.deliver(&message),
                    None => break,
                },
                Some(channel) = released.recv() => shared.release(&channel).await,
                _ = health.tick() => {
                    if let Err(error) = shared.ping().await {
                        tracing::debug!(%error, "The redis subscriber connection does not answer.");
                        break;
                    }
                }
            }
        }
        shared.disconnected().await;
        tracing::warn!("The redis subscriber connection was lost; reconnecting.");
        let mut delay = RECONNECT_INITIAL_DELAY;
        messages = loop {
            let jitter =
                Duration::from_millis(rand::random_range(0..=delay.as_millis() as u64 / 4));
            tokio::time::sleep(delay + jitter).await;
            delay = (delay * 2).min(RECONNECT_MAX_DELAY);
            let attempt = async {
                let (sink, messages) = connect_subscriber(&client, connect_timeout).await?;
                shared.resubscribe(sink).await?;
                Ok::<_, StorageError>(messages)
            };
            match attempt.await {
                Ok(messages) => {
                    tracing::info!("The redis subscriber connection is back.");
                    break messages;
                }
                Err(error) => tracing::debug!(%error, "Reconnecting to redis failed."),
            }
        };
    }
}

impl RedisPubSub {
    /// Connects the publishing and the subscriber connection to the server named by `url`,
    /// with channels under `namespace:`. Fails within `connect_timeout` when the server is
    /// down; afterwards both connections are re-established by themselves.
    pub async fn connect(
        url: &str,
        namespace: &str,
        options: &ConnectOptions,
    ) -> Result<RedisPubSub, StorageError> {
        validate_namespace(namespace)?;
        let publisher = connection_manager(url, options).await?;
        let client = redis::Client::open(url)
            .map_err(|error| StorageError::InvalidUrl(format!("redis url: {error}")))?;
        let (sink, messages) = connect_subscriber(&client, options.connect_timeout).await?;
        let (released, released_receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            routes: Mutex::new(HashMap::new()),
            control: tokio::sync::Mutex::new(Control {
                sink: Some(sink),
                subscribed: HashSet::new(),
            }),
            released,
            next_route: AtomicU64::new(0),
            timeout: options.operation_timeout,
        });
        let reader = tokio::spawn(run(
            shared.clone(),
            client,
            options.connect_timeout,
            messages,
            released_receiver,
        ));
        Ok(RedisPubSub {
            publisher,
            prefix: format!("{namespace}:"),
            shared,
            reader,
        })
    }
}

impl Drop for RedisPubSub {
    /// Stops the reader and ends every subscription's stream: the broker is gone for good.
    fn drop(&mut self) {
        self.reader.abort();
        self.shared.routes().clear();
    }
}

#[async_trait]
impl PubSub for RedisPubSub {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), StorageError> {
        validate_topic(topic)?;
        let mut connection = self.publisher.clone();
        redis::cmd("PUBLISH")
            .arg(format!("{}{topic}", self.prefix))
            .arg(payload.as_ref())
            .query_async::<()>(&mut connection)
            .await
            .map_err(map_redis_error)
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, StorageError> {
        validate_topic(topic)?;
        let channel = format!("{}{topic}", self.prefix);
        let (sender, receiver) = mpsc::channel(SUBSCRIBER_CAPACITY);
        let id = self.shared.next_route.fetch_add(1, Ordering::Relaxed);
        self.shared
            .routes()
            .entry(channel.clone())
            .or_default()
            .push(Route { id, sender });
        // From here on, dropping the guard (on failure, or when this future is cancelled)
        // removes the route again.
        let guard = RouteGuard {
            shared: self.shared.clone(),
            channel,
            id,
        };
        self.shared.subscribe(&guard.channel).await?;
        let messages = futures::stream::unfold((receiver, guard), |(mut receiver, guard)| async {
            let message = receiver.recv().await?;
            Some((message, (receiver, guard)))
        });
        Ok(Subscription::new(messages.boxed()))
    }

    /// Pings both connections: publishing and receiving must both work.
    async fn ping(&self) -> Result<(), StorageError> {
        crate::storage::redis::ping(&self.publisher).await?;
        self.shared.ping().await
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}
