//! `memory:` — topics in this process, one broadcast channel each. For a single replica.
//!
//! A subscriber more than [`CAPACITY`] messages behind skips the oldest it missed, as a
//! network broker would drop them; publishing never waits for a slow subscriber.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::broadcast;

use super::{PubSub, Subscription, validate_topic};
use crate::storage::StorageError;

/// Messages a subscriber may fall behind by before it skips some.
pub const CAPACITY: usize = 1024;

/// The in-process broker.
#[derive(Debug, Default)]
pub struct MemoryPubSub {
    topics: Mutex<HashMap<String, broadcast::Sender<Bytes>>>,
}

impl MemoryPubSub {
    fn topics(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Bytes>>>, StorageError>
    {
        self.topics.lock().map_err(|_| {
            StorageError::Backend("the in-memory broker is poisoned by an earlier panic".into())
        })
    }
}

#[async_trait]
impl PubSub for MemoryPubSub {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), StorageError> {
        validate_topic(topic)?;
        // No topic or no receiver is not an error: nobody subscribed, so nobody misses it.
        if let Some(sender) = self.topics()?.get(topic) {
            let _ = sender.send(payload);
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, StorageError> {
        validate_topic(topic)?;
        let receiver = {
            let mut topics = self.topics()?;
            // Drop topics nobody listens to any more, so the map does not grow with every room
            // that ever existed. Subscribing under the same lock, so a topic is never dropped
            // between finding it and subscribing to it.
            topics.retain(|_, sender| sender.receiver_count() > 0);
            topics
                .entry(topic.to_owned())
                .or_insert_with(|| broadcast::channel(CAPACITY).0)
                .subscribe()
        };
        let messages = futures::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(message) => return Some((message, receiver)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(Subscription::new(messages.boxed()))
    }

    async fn ping(&self) -> Result<(), StorageError> {
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}
