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
pub const CAPACITY: usize = 4096;

/// The in-process broker.
#[derive(Debug, Default)]
pub struct MemoryPubSub {
    topics: Mutex<HashMap<String, broadcast::Sender<Bytes>>>,
}

impl MemoryPubSub {
    fn sender(&self, topic: &str) -> Result<broadcast::Sender<Bytes>, StorageError> {
        let mut topics = self.topics.lock().map_err(|_| {
            StorageError::Backend("the in-memory broker is poisoned by an earlier panic".into())
        })?;
        // Drop topics nobody listens to any more, so the map does not grow with every room
        // that ever existed.
        topics.retain(|_, sender| sender.receiver_count() > 0);
        Ok(topics
            .entry(topic.to_owned())
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .clone())
    }
}

#[async_trait]
impl PubSub for MemoryPubSub {
    async fn publish(&self, topic: &str, payload: Bytes) -> Result<(), StorageError> {
        validate_topic(topic)?;
        // No receiver is not an error: nobody subscribed, so nobody misses it.
        let _ = self.sender(topic)?.send(payload);
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<Subscription, StorageError> {
        validate_topic(topic)?;
        let receiver = self.sender(topic)?.subscribe();
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
