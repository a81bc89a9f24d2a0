//! The rooms of this replica by name. A join finds its room's tasks, or subscribes to the
//! room's topic and starts them, and gets a [`Membership`]; a room whose tasks end is
//! forgotten, so the next join starts it afresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use platform::clock::WallClock;
use platform::slo::budget::Budgets;
use platform::storage::StorageError;
use platform::storage::log::Log;
use platform::storage::pubsub::PubSub;
use tokio::sync::{mpsc, oneshot};

use crate::config::ChatSettings;
use crate::domain::{DisplayName, RoomName};
use crate::hub::ingest::{self, Inbound};
use crate::hub::replica::Replica;
use crate::hub::room::{self, Command};
use crate::metrics::{self, Instruments};
use crate::queue;

/// Why a join failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The log or the broker failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The room's tasks ended (the server is stopping).
    #[error("the room is closing")]
    Closing,
}

/// A member's handle on its room.
#[derive(Debug)]
pub struct Membership {
    /// The id the room knows the member by.
    pub id: u64,
    /// The name the room gave.
    pub name: DisplayName,
    /// Where the member's messages go.
    pub inbound: mpsc::Sender<Inbound>,
    commands: mpsc::Sender<Command>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        // The room also notices a closed queue; this makes leaving immediate.
        let _ = self.commands.try_send(Command::Leave { member: self.id });
    }
}

/// Every room of this replica.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    /// What every room's tasks share.
    replica: Arc<Replica>,
    rooms: Mutex<HashMap<RoomName, RoomHandle>>,
    next_room: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
struct RoomHandle {
    id: u64,
    commands: mpsc::Sender<Command>,
    inbound: mpsc::Sender<Inbound>,
}

impl Hub {
    /// A hub storing history in `log` and fanning out through `broker`, stamping messages with
    /// `clock`'s time.
    pub fn new(
        log: Arc<dyn Log>,
        broker: Arc<dyn PubSub>,
        settings: Arc<ChatSettings>,
        budgets: Budgets,
        clock: WallClock,
    ) -> Hub {
        Hub {
            inner: Arc::new(HubInner {
                replica: Arc::new(Replica {
                    id: uuid::Uuid::new_v4().simple().to_string(),
                    alone: broker.backend() == "memory",
                    log,
                    broker,
                    settings,
                    budgets,
                    instruments: Instruments::new(),
                    clock,
                }),
                rooms: Mutex::new(HashMap::new()),
                next_room: std::sync::atomic::AtomicU64::new(1),
            }),
        }
    }

    /// Joins `room` as `name` (made unique in the room). The `joined` frame, then history (or
    /// everything after `last_seq`), then live messages arrive on `queue`.
    pub async fn join(
        &self,
        room: &RoomName,
        name: DisplayName,
        last_seq: Option<u64>,
        queue: queue::Sender,
    ) -> Result<Membership, JoinError> {
        // A room that is just ending refuses the join; the second attempt starts a new one.
        for _ in 0..3 {
            let handle = self.room(room).await?;
            let (reply, answer) = oneshot::channel();
            let join = Command::Join {
                name: name.clone(),
                last_seq,
                queue: queue.clone(),
                reply,
            };
            if handle.commands.send(join).await.is_err() {
                self.forget(room, handle.id);
                continue;
            }
            match answer.await {
                Ok(Ok((id, name))) => {
                    return Ok(Membership {
                        id,
                        name,
                        inbound: handle.inbound,
                        commands: handle.commands,
                    });
                }
                Ok(Err(error)) => return Err(error.into()),
                Err(_) => self.forget(room, handle.id),
            }
        }
        Err(JoinError::Closing)
    }

    async fn room(&self, name: &RoomName) -> Result<RoomHandle, StorageError> {
        if let Some(handle) = self.rooms().get(name) {
            return Ok(handle.clone());
        }
        // Subscribe before the room can deliver anything: the room starts from the log's last
        // sequence number read after this, so nothing falls between the two.
        let replica = &self.inner.replica;
        let subscription = replica.broker.subscribe(name.as_str()).await?;
        let mut rooms = self.rooms();
        if let Some(handle) = rooms.get(name) {
            // Another join started the room meanwhile; this subscription is dropped.
            return Ok(handle.clone());
        }
        let (commands, command_rx) = mpsc::channel(1024);
        let (inbound, inbound_rx) =
            mpsc::channel(replica.settings.chat.send_queue.max(ingest::MAX_BATCH));
        let id = self
            .inner
            .next_room
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let handle = RoomHandle {
            id,
            commands,
            inbound,
        };
        rooms.insert(name.clone(), handle.clone());
        metrics::rooms_open(rooms.len());
        drop(rooms);
        let local = handle.commands.downgrade();
        tokio::spawn(ingest::run(
            replica.clone(),
            name.clone(),
            inbound_rx,
            local,
        ));
        let hub = self.clone();
        let forgotten = name.clone();
        tokio::spawn(room::run(
            replica.clone(),
            name.clone(),
            command_rx,
            subscription,
            move || hub.forget(&forgotten, id),
        ));
        Ok(handle)
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<RoomName, RoomHandle>> {
        // A poisoned map only means a task panicked while holding it; the map itself is whole.
        self.inner
            .rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn forget(&self, room: &RoomName, id: u64) {
        let mut rooms = self.rooms();
        if rooms.get(room).is_some_and(|handle| handle.id == id) {
            rooms.remove(room);
        }
        metrics::rooms_open(rooms.len());
    }
}
