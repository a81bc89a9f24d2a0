//! `nats://` — NATS core publish/subscribe between replicas.
//!
//! URLs: `nats://[user:password@]host:4222`, `tls://host:4222` (TLS with `ring`). A topic `t`
//! of namespace `n` is the subject `n.t`; topics have no `.`, so one topic is one token and
//! wildcards cannot leak into it.
//!
//! One client (one connection) per [`NatsPubSub`], shared by publishing and every subscription;
//! async-nats reconnects it by itself, with back-off, forever, and subscribes every live
//! subscription again.
//!
//! Capabilities:
//! - [x] publish, subscribe, unsubscribe on drop; the publisher receives its own messages
//! - [x] `subscribe` returns once the server registered the interest: after `SUB` and a flush,
//!   it makes a request to a subject nobody serves and waits for the server's
//!   "no responders" answer, which the server sends only after handling the `SUB` before it
//! - [x] order: each subscriber sees a subject's messages in the order the server received them
//! - [x] slow subscribers: async-nats queues 65536 messages per subscription and drops beyond
//! - [x] reconnects by itself; messages published meanwhile are lost, and `publish` and
//!   `subscribe` fail with [`StorageError::Unavailable`] while disconnected, which
//!   `is_connected` tells without a round trip
//! - [ ] delivery guarantees: at most once; `Ok` from `publish` means the message was written
//!   to the server's socket (NATS core has no acknowledgement), not that the server routed it
//! - [ ] JetStream: not used

use std::time::Duration;

use async_nats::connection::State;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use super::{PubSub, Subscription, validate_topic};
use crate::storage::{BoxError, ConnectOptions, StorageError, validate_namespace};

/// A subject nobody subscribes to: a request to it is answered by the server itself.
const PROBE_SUBJECT: &str = "_platform.probe";

/// How often the client pings an idle connection, so a silently dead one is replaced.
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// A broker over one NATS connection.
#[derive(Debug, Clone)]
pub struct NatsPubSub {
    client: async_nats::Client,
    prefix: String,
    timeout: Duration,
}

impl NatsPubSub {
    /// Connects to the server named by `url`, with subjects under `namespace.`. Fails within
    /// `connect_timeout` when the server is down; afterwards the client reconnects by itself.
    pub async fn connect(
        url: &str,
        namespace: &str,
        options: &ConnectOptions,
    ) -> Result<NatsPubSub, StorageError> {
        validate_namespace(namespace)?;
        let connect = async_nats::ConnectOptions::new()
            .connection_timeout(options.connect_timeout)
            .request_timeout(Some(options.operation_timeout))
            .ping_interval(PING_INTERVAL)
            .max_reconnects(None)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Disconnected => {
                        tracing::warn!("The NATS connection was lost; reconnecting.");
                    }
                    async_nats::Event::Connected => {
                        tracing::info!("The NATS connection is up.");
                    }
                    other => tracing::debug!(event = %other, "NATS client event."),
                }
            })
            .connect(url);
        let client = tokio::time::timeout(options.connect_timeout, connect)
            .await
            .map_err(|_| {
                StorageError::Unavailable(
                    format!(
                        "nats did not accept a connection within {:?}",
                        options.connect_timeout
                    )
                    .into(),
                )
            })?
            .map_err(map_nats_error)?;
        Ok(NatsPubSub {
            client,
            prefix: format!("{namespace}."),
            timeout: options.operation_timeout,
        })
    }

    /// Refuses at once while the client is reconnecting, rather than queueing for later.
    fn connected(&self) -> Result<(), StorageError> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            state => Err(StorageError::Unavailable(
                format!("the nats connection is {state}; it is reconnecting").into(),
            )),
        }
    }

    /// A round trip through the server: everything this client sent before has been handled.
    async fn round_trip(&self) -> Result<(), StorageError> {
        let request = async_nats::Request::new().timeout(Some(self.timeout));
        match self.client.send_request(PROBE_SUBJECT, request).await {
            Ok(_) => Ok(()),
            Err(error) if error.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
            Err(error) => Err(map_nats_error(error)),
        }
    }
}

/// The one place NATS errors become [`StorageError`] kinds. Connection, timeout and send
/// failures are temporary; a malformed URL, refused credentials, TLS set-up, and a payload or
/// subject the server cannot take are not.
fn map_nats_error(error: impl Into<BoxError>) -> StorageError {
    use async_nats::ConnectErrorKind;
    use async_nats::client::PublishErrorKind;
    let error = error.into();
    if let Some(connect) = error.downcast_ref::<async_nats::ConnectError>() {
        match connect.kind() {
            ConnectErrorKind::ServerParse => {
                return StorageError::InvalidUrl(format!("nats url: {connect}"));
            }
            ConnectErrorKind::Authentication
            | ConnectErrorKind::AuthorizationViolation
            | ConnectErrorKind::Tls => return StorageError::Backend(error),
            _ => {}
        }
    }
    let permanent_publish = error
        .downcast_ref::<async_nats::PublishError>()
        .is_some_and(|publish| {
            matches!(
                publish.kind(),
                PublishErrorKind::MaxPayloadExceeded | PublishErrorKind::InvalidSubject
            )
        });
    if permanent_publish {
        return StorageError::Backend(error);
    }
    StorageError::Unavailable(error)
}

#[async_trait]
impl PubSub for NatsPubSub {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), StorageError> {
        validate_topic(topic)?;
        self.connected()?;
        self.client
            .publish(format!("{}{topic}", self.prefix), payload)
            .await
            .map_err(map_nats_error)?;
        self.client.flush().await.map_err(map_nats_error)
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, StorageError> {
        validate_topic(topic)?;
        self.connected()?;
        let subscriber = self
            .client
            .subscribe(format!("{}{topic}", self.prefix))
            .await
            .map_err(map_nats_error)?;
        self.client.flush().await.map_err(map_nats_error)?;
        // Dropping `subscriber` on failure unsubscribes again.
        self.round_trip().await?;
        Ok(Subscription::new(
            subscriber.map(|message| message.payload).boxed(),
        ))
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.connected()?;
        self.round_trip().await
    }

    fn is_connected(&self) -> bool {
        self.connected().is_ok()
    }

    fn backend(&self) -> &'static str {
        "nats"
    }
}
