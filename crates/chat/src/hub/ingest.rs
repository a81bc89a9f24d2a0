//! A room's ingest task: it takes what the room's local members send, in batches (whatever
//! queued up while the last batch was written), appends each batch to the room's log in one
//! call, which numbers the messages, then publishes the batch to the room's broker topic in one
//! message. What cannot be stored is answered with an `unavailable` error frame.

use std::sync::Arc;

use bytes::Bytes;
use platform::storage::StorageError;
use tokio::sync::mpsc;

use crate::domain::RoomName;
use crate::hub::replica::Replica;
use crate::hub::room::Command;
use crate::protocol::{BrokerEvent, Frame, Message, ServerFrame};
use crate::queue;
use crate::slo;

/// Most messages appended and published as one batch.
pub(super) const MAX_BATCH: usize = 512;

/// A message from a local member, not yet numbered.
#[derive(Debug)]
pub struct Inbound {
    /// The sender's name, as the room gave it.
    pub name: String,
    /// The cleaned text.
    pub text: String,
    /// Where to send an `unavailable` error if the message cannot be stored: the member's
    /// queue, held weakly so that only the room keeps it open.
    pub reply: queue::WeakSender,
}

/// Appends and publishes what local members send, a batch at a time. `local` reaches the
/// room's own task (weakly, so it does not keep the room open).
pub(super) async fn run(
    replica: Arc<Replica>,
    room: RoomName,
    mut inbound: mpsc::Receiver<Inbound>,
    local: mpsc::WeakSender<Command>,
) {
    // Grows with the bursts it meets: a quiet room does not hold MAX_BATCH slots.
    let mut batch = Vec::new();
    while inbound.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let now = replica.clock.unix_millis();
        let mut messages: Vec<Message> = batch
            .iter()
            .map(|inbound| Message {
                seq: 0,
                name: inbound.name.clone(),
                text: inbound.text.clone(),
                ts: now,
            })
            .collect();
        let count = u64::try_from(messages.len()).unwrap_or(u64::MAX);
        let refused = match store_and_publish(&replica, &room, &mut messages).await {
            Ok(()) => None,
            Err(Unpublished::Stored(error)) => {
                // Stored and numbered: refusing now would be untrue (the room's history has
                // them, and other replicas fill the gap from the log once the broker carries a
                // later message), so this replica's members get them at once.
                tracing::warn!(room = room.as_str(), error = %error, "Stored messages could not be published; delivering them on this replica.");
                if let Some(commands) = local.upgrade() {
                    let _ = commands.send(Command::Deliver { messages }).await;
                }
                None
            }
            Err(Unpublished::NotStored(error)) => Some((error, NOT_STORED)),
            Err(Unpublished::MaybeStored(error)) => Some((error, MAYBE_STORED)),
        };
        match refused {
            None => {
                replica.instruments.accepted(count);
                replica.budgets.record_ratio(slo::DELIVERED_SLO, count, 0);
            }
            Some((error, detail)) => {
                tracing::warn!(room = room.as_str(), error = %error, "Messages could not be stored or published.");
                refuse(&replica, &batch, detail);
                // What queued while this batch waited out the failure would wait as long again
                // for the same answer (a database that is down costs a batch its whole connect
                // deadline), so it is refused now, never tried: certainly not stored. This
                // keeps an outage's answers at one deadline instead of one per batch in line.
                batch.clear();
                while batch.len() < MAX_BATCH
                    && let Ok(behind) = inbound.try_recv()
                {
                    batch.push(behind);
                }
                if !batch.is_empty() {
                    refuse(&replica, &batch, NOT_STORED);
                }
            }
        }
        batch.clear();
    }
}

/// Answers every message of `batch` with an `unavailable` error frame saying `detail`, and
/// counts them as failed deliveries.
fn refuse(replica: &Replica, batch: &[Inbound], detail: &'static str) {
    let count = u64::try_from(batch.len()).unwrap_or(u64::MAX);
    replica.instruments.failed(count);
    replica
        .budgets
        .record_ratio(slo::DELIVERED_SLO, count, count);
    let frame: Frame = ServerFrame::Error {
        code: "unavailable",
        detail,
        limit: None,
    }
    .to_text()
    .into();
    for inbound in batch {
        let _ = inbound.reply.try_send(frame.clone());
    }
}

/// The `unavailable` detail when the message certainly was not stored.
pub const NOT_STORED: &str = "the message was not stored; send it again shortly";
/// The `unavailable` detail when storing it failed part way (a timeout, a connection lost):
/// it may have been stored, and then it appears in the room under its number.
pub const MAYBE_STORED: &str =
    "the message may not have been stored; send it again shortly if it does not appear";

/// Why a batch was not published.
enum Unpublished {
    /// Refused before the log saw it.
    NotStored(StorageError),
    /// The log failed: whether it stored the batch before failing is unknown (a commit whose
    /// answer was lost, or that finished after the time limit, is stored).
    MaybeStored(StorageError),
    /// Stored and numbered, but the broker did not take it.
    Stored(StorageError),
}

async fn store_and_publish(
    replica: &Replica,
    room: &RoomName,
    messages: &mut [Message],
) -> Result<(), Unpublished> {
    // A stored message is a delivered one (the log numbers it and members read it back), so
    // a batch is refused before the log sees it while the broker is known to be down: an
    // `unavailable` answer then means "not stored", and sending again makes no duplicate.
    if !replica.broker.is_connected() {
        return Err(Unpublished::NotStored(StorageError::Unavailable(
            "the broker is reconnecting".into(),
        )));
    }
    // The log stores what a client needs to redisplay the message; it numbers it.
    let entries: Vec<Vec<u8>> = messages
        .iter()
        .map(|message| serde_json::to_vec(message).unwrap_or_default())
        .collect();
    let first = replica
        .log
        .append(room.as_str(), &entries)
        .await
        .map_err(Unpublished::MaybeStored)?;
    for (offset, message) in (0u64..).zip(messages.iter_mut()) {
        message.seq = first + offset;
    }
    let event = BrokerEvent::Messages {
        messages: messages.to_vec(),
    };
    let payload = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
    replica
        .broker
        .publish(room.as_str(), payload)
        .await
        .map_err(Unpublished::Stored)
}
