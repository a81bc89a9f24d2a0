//! Rooms on this replica. Each room with local members runs two tasks:
//!
//! - **ingest**: takes what local members send, in batches (whatever queued up while the last
//!   batch was written), appends each batch to the room's log in one call, which numbers the
//!   messages, then publishes the batch to the room's broker topic in one message.
//! - **room**: owns the members, and delivers what the broker carries (from every replica,
//!   this one included) in sequence order: messages that arrive early wait for the gap before
//!   them, which is filled from the log if the broker lost it. Each message is serialised once
//!   and the same bytes are queued for every member, at once while the room is quiet and at a
//!   bounded pace while it is busy (see [`crate::pacing`]); a member whose bounded queue is
//!   full is dropped (it resumes on reconnect), so one slow client never stalls a room.
//!
//! Presence is per replica: each replica publishes its own members of a room, and a room's
//! member list is the union of the latest lists of the replicas seen within [`PRESENCE_TTL`].
//! A replica that opens a room asks the room's topic who is in it (`query`), and lets no one
//! join until the first `roster` answers (every replica that had the room open answers with
//! everyone it knows of) or `chat.presence_wait` has passed, so a name is made unique against
//! every replica's members, not only this one's. Limits: a room no replica has open waits the
//! whole time; two replicas opening the same room within one broker round trip both see
//! nobody, and may give the same name; a roster or presence the broker loses is missed until
//! the next refresh, and a broker that is down leaves only this replica's members to compare.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use platform::clock::WallClock;
use platform::slo::budget::Budgets;
use platform::storage::StorageError;
use platform::storage::log::Log;
use platform::storage::pubsub::{PubSub, Subscription};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::ChatSettings;
use crate::domain::{DisplayName, Likeness, RoomName};
use crate::metrics::{self, Instruments};
use crate::pacing::Pacing;
use crate::protocol::{BrokerEvent, Frame, Message, ServerFrame};
use crate::queue;
use crate::slo;

/// How long a replica's presence list stays valid without being republished.
pub const PRESENCE_TTL: Duration = Duration::from_secs(30);
/// How often a replica republishes its presence lists.
const PRESENCE_REFRESH: Duration = Duration::from_secs(10);
/// Presence changes are sent to members at most this often (joins in a burst become one frame).
const PRESENCE_DEBOUNCE: Duration = Duration::from_millis(100);
/// How long a message may wait for the gap before it before the log is asked.
const GAP_WAIT: Duration = Duration::from_millis(100);
/// Most messages appended and published as one batch.
const MAX_BATCH: usize = 512;
/// Most frames waiting for a paced fan-out; more go out at once (a member writes at most 256
/// frames per flush anyway).
const MAX_READY: usize = 256;
/// Messages read from the log per call when catching up.
const CATCH_UP_PAGE: usize = 1000;
/// How long an empty room keeps its tasks, so a reconnecting member finds them warm.
const IDLE_ROOM: Duration = Duration::from_secs(30);

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

enum Command {
    Join {
        name: DisplayName,
        last_seq: Option<u64>,
        queue: queue::Sender,
        reply: oneshot::Sender<Result<(u64, DisplayName), StorageError>>,
    },
    Leave {
        member: u64,
    },
    /// Numbered messages the broker did not take: delivered to this replica's members directly.
    Deliver {
        messages: Vec<Message>,
    },
}

/// Every room of this replica.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    replica: String,
    /// The broker reaches no other replica (`memory:`): a new room asks no one who is in it.
    alone: bool,
    log: Arc<dyn Log>,
    broker: Arc<dyn PubSub>,
    settings: Arc<ChatSettings>,
    budgets: Budgets,
    rooms: Mutex<HashMap<RoomName, RoomHandle>>,
    next_room: std::sync::atomic::AtomicU64,
    /// Handles made once: recording then costs an atomic add, not a registry lookup.
    instruments: Instruments,
    /// Stamps accepted messages and times their fan-out.
    clock: WallClock,
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
                replica: uuid::Uuid::new_v4().simple().to_string(),
                alone: broker.backend() == "memory",
                log,
                broker,
                settings,
                budgets,
                rooms: Mutex::new(HashMap::new()),
                next_room: std::sync::atomic::AtomicU64::new(1),
                instruments: Instruments::new(),
                clock,
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

    async fn room(&self, room: &RoomName) -> Result<RoomHandle, StorageError> {
        if let Some(handle) = self.rooms().get(room) {
            return Ok(handle.clone());
        }
        // Subscribe before the room can deliver anything: the room starts from the log's last
        // sequence number read after this, so nothing falls between the two.
        let subscription = self.inner.broker.subscribe(room.as_str()).await?;
        let mut rooms = self.rooms();
        if let Some(handle) = rooms.get(room) {
            // Another join started the room meanwhile; this subscription is dropped.
            return Ok(handle.clone());
        }
        let settings = &self.inner.settings;
        let (commands, command_rx) = mpsc::channel(1024);
        let (inbound, inbound_rx) = mpsc::channel(settings.chat.send_queue.max(MAX_BATCH));
        let id = self
            .inner
            .next_room
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let handle = RoomHandle {
            id,
            commands,
            inbound,
        };
        rooms.insert(room.clone(), handle.clone());
        metrics::rooms_open(rooms.len());
        drop(rooms);
        let local = handle.commands.downgrade();
        tokio::spawn(ingest(self.clone(), room.clone(), inbound_rx, local));
        tokio::spawn(run_room(
            self.clone(),
            room.clone(),
            id,
            command_rx,
            subscription,
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

/// Appends and publishes what local members send, a batch at a time. `local` reaches the
/// room's own task (weakly, so it does not keep the room open).
async fn ingest(
    hub: Hub,
    room: RoomName,
    mut inbound: mpsc::Receiver<Inbound>,
    local: mpsc::WeakSender<Command>,
) {
    // Grows with the bursts it meets: a quiet room does not hold MAX_BATCH slots.
    let mut batch = Vec::new();
    while inbound.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let now = hub.inner.clock.unix_millis();
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
        let refused = match store_and_publish(&hub, &room, &mut messages).await {
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
                hub.inner.instruments.accepted(count);
                hub.inner.budgets.record_ratio(slo::DELIVERED_SLO, count, 0);
            }
            Some((error, detail)) => {
                tracing::warn!(room = room.as_str(), error = %error, "Messages could not be stored or published.");
                refuse(&hub, &batch, detail);
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
                    refuse(&hub, &batch, NOT_STORED);
                }
            }
        }
        batch.clear();
    }
}

/// Answers every message of `batch` with an `unavailable` error frame saying `detail`, and
/// counts them as failed deliveries.
fn refuse(hub: &Hub, batch: &[Inbound], detail: &'static str) {
    let count = u64::try_from(batch.len()).unwrap_or(u64::MAX);
    hub.inner.instruments.failed(count);
    hub.inner
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
    hub: &Hub,
    room: &RoomName,
    messages: &mut [Message],
) -> Result<(), Unpublished> {
    // A stored message is a delivered one (the log numbers it and members read it back), so
    // a batch is refused before the log sees it while the broker is known to be down: an
    // `unavailable` answer then means "not stored", and sending again makes no duplicate.
    if !hub.inner.broker.is_connected() {
        return Err(Unpublished::NotStored(StorageError::Unavailable(
            "the broker is reconnecting".into(),
        )));
    }
    // The log stores what a client needs to redisplay the message; it numbers it.
    let entries: Vec<Vec<u8>> = messages
        .iter()
        .map(|message| serde_json::to_vec(message).unwrap_or_default())
        .collect();
    let first = hub
        .inner
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
    hub.inner
        .broker
        .publish(room.as_str(), payload)
        .await
        .map_err(Unpublished::Stored)
}

struct Member {
    name: DisplayName,
    likeness: Likeness,
    queue: queue::Sender,
}

/// Another replica's members of the room.
struct Remote {
    names: Vec<String>,
    /// How each name looks, in the order of `names`.
    likenesses: Vec<Likeness>,
    /// When the list was last heard.
    heard: Instant,
}

impl Remote {
    fn new(names: Vec<String>) -> Remote {
        Remote {
            likenesses: names.iter().map(|name| Likeness::of(name)).collect(),
            names,
            heard: Instant::now(),
        }
    }
}

/// The state of one room on this replica; see the module documentation.
struct Room {
    hub: Hub,
    name: RoomName,
    members: HashMap<u64, Member>,
    next_member: u64,
    /// The last sequence number delivered to local members (or waiting in `ready`).
    delivered: u64,
    /// Frames in sequence order that the next fan-out queues for every member, as they are
    /// (no copy per fan-out), and their messages' timestamps, one each.
    ready: Vec<Frame>,
    ready_ts: Vec<u64>,
    pacing: Pacing,
    /// When `ready` goes out, if it waits for the pace.
    fan_out_at: Option<Instant>,
    /// Messages that arrived ahead of a gap, by sequence number.
    early: BTreeMap<u64, Message>,
    /// Since when the oldest gap has been waited for.
    gap_since: Option<Instant>,
    /// Other replicas' members, by replica id.
    remote: HashMap<String, Remote>,
    presence_dirty: bool,
    /// Until when joins wait for the answer to this replica's `query`, while they do.
    gathering: Option<Instant>,
}

async fn run_room(
    hub: Hub,
    name: RoomName,
    id: u64,
    mut commands: mpsc::Receiver<Command>,
    mut subscription: Subscription,
) {
    let delivered = match hub.inner.log.read_last(name.as_str(), 1).await {
        Ok(last) => last.first().map_or(0, |entry| entry.seq),
        Err(error) => {
            // Without the starting point the room cannot promise order; refuse its joins.
            tracing::warn!(room = name.as_str(), error = %error, "The room's log is unreachable.");
            commands.close();
            while let Some(command) = commands.recv().await {
                if let Command::Join { reply, .. } = command {
                    let _ = reply.send(Err(StorageError::Unavailable(
                        "the room's history is unreachable".into(),
                    )));
                }
            }
            hub.forget(&name, id);
            return;
        }
    };
    let mut room = Room {
        hub: hub.clone(),
        name: name.clone(),
        members: HashMap::new(),
        next_member: 1,
        delivered,
        ready: Vec::new(),
        ready_ts: Vec::new(),
        pacing: Pacing::new(Instant::now()),
        fan_out_at: None,
        early: BTreeMap::new(),
        gap_since: None,
        remote: HashMap::new(),
        presence_dirty: false,
        gathering: None,
    };
    room.ask_who_is_here().await;
    let mut refresh = tokio::time::interval(PRESENCE_REFRESH);
    let mut debounce = tokio::time::interval(PRESENCE_DEBOUNCE);
    let idle = tokio::time::sleep(IDLE_ROOM);
    tokio::pin!(idle);
    loop {
        let gap_deadline = room.gap_since.map(|since| since + GAP_WAIT);
        tokio::select! {
            () = sleep_until_opt(room.fan_out_at) => room.fan_out(),
            () = sleep_until_opt(room.gathering) => {
                tracing::debug!(room = room.name.as_str(), "No replica answered who is in the room.");
                room.gathering = None;
            }
            command = commands.recv(), if room.gathering.is_none() => match command {
                Some(Command::Join { name, last_seq, queue, reply }) => {
                    // A newcomer reads the log up to `delivered`: everything up to it goes out
                    // to the others first, so it is neither missed nor doubled.
                    room.fan_out();
                    let joined = room.join(name, last_seq, queue).await;
                    let _ = reply.send(joined);
                }
                Some(Command::Leave { member }) => room.leave(member),
                Some(Command::Deliver { messages }) => room.accept(messages),
                None => break,
            },
            event = subscription.next() => match event {
                Some(payload) => room.on_broker_event(&payload).await,
                None => {
                    tracing::warn!(room = room.name.as_str(), "The broker subscription ended; closing the room.");
                    break;
                }
            },
            () = sleep_until_opt(gap_deadline) => room.fill_gap().await,
            _ = debounce.tick(), if room.presence_dirty => room.send_presence().await,
            _ = refresh.tick() => room.refresh_presence().await,
            () = &mut idle, if room.members.is_empty() && room.gathering.is_none() => break,
        }
        // Joins held while gathering find the room open, however long the wait was.
        if !room.members.is_empty() || room.gathering.is_some() {
            idle.as_mut().reset(Instant::now() + IDLE_ROOM);
        }
    }
    room.fan_out();
    hub.forget(&name, id);
    // Members still here (the broker went away) see their queue close and reconnect.
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => futures::future::pending().await,
    }
}

impl Room {
    /// Whether a member here or on another replica has a name that looks like `candidate`.
    fn taken(&self, candidate: &Likeness) -> bool {
        self.members
            .values()
            .any(|member| member.likeness.resembles(candidate))
            || self.remote.values().any(|remote| {
                remote
                    .likenesses
                    .iter()
                    .any(|likeness| likeness.resembles(candidate))
            })
    }

    /// This replica's members' names.
    fn own_names(&self) -> Vec<String> {
        self.members
            .values()
            .map(|member| member.name.as_str().to_owned())
            .collect()
    }

    fn member_names(&self) -> Vec<String> {
        let mut names = self.own_names();
        names.extend(
            self.remote
                .values()
                .flat_map(|remote| remote.names.iter().cloned()),
        );
        names.sort();
        names.dedup();
        names
    }

    async fn join(
        &mut self,
        asked: DisplayName,
        last_seq: Option<u64>,
        queue: queue::Sender,
    ) -> Result<(u64, DisplayName), StorageError> {
        let name = asked.unique(|candidate| self.taken(candidate));
        let log = &self.hub.inner.log;
        let history = self.hub.inner.settings.chat.history;
        // Everything up to `delivered` comes from the log; later messages arrive live.
        let mut backlog = Vec::new();
        match last_seq {
            Some(after) if after < self.delivered => {
                let mut cursor = after;
                while cursor < self.delivered {
                    let page = log
                        .read_after(self.name.as_str(), cursor, CATCH_UP_PAGE)
                        .await?;
                    let Some(last) = page.last() else { break };
                    cursor = last.seq;
                    backlog.extend(page.into_iter().filter(|entry| entry.seq <= self.delivered));
                }
            }
            Some(_) => {}
            None => {
                let recent = log.read_last(self.name.as_str(), history).await?;
                backlog.extend(
                    recent
                        .into_iter()
                        .filter(|entry| entry.seq <= self.delivered),
                );
            }
        }
        let mut members = self.member_names();
        members.push(name.as_str().to_owned());
        members.sort();
        members.dedup();
        let mut frames: Vec<Frame> = vec![
            ServerFrame::Joined {
                room: self.name.as_str(),
                name: name.as_str(),
                members: &members,
                last_seq: self.delivered,
            }
            .to_text()
            .into(),
        ];
        if let (Some(after), Some(first)) = (last_seq, backlog.first())
            && first.seq > after + 1
        {
            frames.push(
                ServerFrame::Error {
                    code: "history_truncated",
                    detail: "messages older than the room's history were missed",
                    limit: u64::try_from(history).ok(),
                }
                .to_text()
                .into(),
            );
        }
        for entry in backlog {
            if let Ok(mut message) = serde_json::from_slice::<Message>(&entry.data) {
                message.seq = entry.seq;
                frames.push(ServerFrame::Message(&message).to_text().into());
            }
        }
        for frame in frames {
            // The queue is new and holds at least `history` frames: only a client gone already fails.
            if queue.try_send(frame).is_err() {
                break;
            }
        }
        let id = self.next_member;
        self.next_member += 1;
        self.members.insert(
            id,
            Member {
                likeness: name.likeness(),
                name: name.clone(),
                queue,
            },
        );
        self.presence_dirty = true;
        self.publish_presence().await;
        Ok((id, name))
    }

    fn leave(&mut self, member: u64) {
        if self.members.remove(&member).is_some() {
            self.presence_dirty = true;
        }
    }

    async fn on_broker_event(&mut self, payload: &[u8]) {
        match serde_json::from_slice::<BrokerEvent>(payload) {
            Ok(BrokerEvent::Messages { messages }) => self.accept(messages),
            Ok(BrokerEvent::Presence { replica, members }) => {
                if replica == self.hub.inner.replica {
                    return;
                }
                let known = self.remote.contains_key(&replica);
                match self.remote.get_mut(&replica) {
                    Some(remote) if remote.names == members => remote.heard = Instant::now(),
                    _ => {
                        self.remote.insert(replica, Remote::new(members));
                        self.presence_dirty = true;
                    }
                }
                if !known && !self.members.is_empty() {
                    // A replica new to the room: tell it who is here.
                    self.publish_presence().await;
                }
            }
            Ok(BrokerEvent::Query { replica }) => {
                // A replica still gathering knows too little to answer for the room.
                if replica != self.hub.inner.replica && self.gathering.is_none() {
                    self.answer(replica).await;
                }
            }
            Ok(BrokerEvent::Roster { to, replicas }) => {
                // Another replica's view is complete only for what the broker carried before
                // this replica's own query, so it fills in replicas not heard from directly.
                if to == self.hub.inner.replica && self.gathering.is_some() {
                    for (replica, members) in replicas {
                        if replica != self.hub.inner.replica && !members.is_empty() {
                            self.remote
                                .entry(replica)
                                .or_insert_with(|| Remote::new(members));
                        }
                    }
                    self.gathering = None;
                }
            }
            Err(error) => {
                tracing::warn!(room = self.name.as_str(), error = %error, "An unreadable broker event was dropped.");
            }
        }
    }

    /// Takes numbered messages (from the broker, or from this replica's ingest when the broker
    /// did not take them) and delivers what follows `delivered`; a message seen twice is
    /// delivered once.
    fn accept(&mut self, messages: Vec<Message>) {
        for message in messages {
            if message.seq > self.delivered {
                self.early.insert(message.seq, message);
            }
        }
        self.deliver_ready();
    }

    /// Delivers every message that follows `delivered` without a gap: now, or at the pace of a
    /// busy room.
    fn deliver_ready(&mut self) {
        while let Some(entry) = self.early.first_entry() {
            if *entry.key() != self.delivered + 1 {
                break;
            }
            let message = entry.remove();
            self.delivered = message.seq;
            let frame: Frame = ServerFrame::Message(&message).to_text().into();
            self.ready.push(frame);
            self.ready_ts.push(message.ts);
        }
        self.gap_since = match (self.early.is_empty(), self.gap_since) {
            (true, _) => None,
            (false, Some(since)) => Some(since),
            (false, None) => Some(Instant::now()),
        };
        if self.ready.len() >= MAX_READY {
            self.fan_out();
            return;
        }
        if self.ready.is_empty() || self.fan_out_at.is_some() {
            return;
        }
        let now = Instant::now();
        let due = self.pacing.due(now, self.members.len());
        if due <= now {
            self.fan_out();
        } else {
            self.fan_out_at = Some(due);
        }
    }

    /// Queues every ready frame for every member, each member's in one go.
    fn fan_out(&mut self) {
        self.fan_out_at = None;
        if self.ready.is_empty() {
            return;
        }
        let mut dropped = Vec::new();
        for (id, member) in &self.members {
            if member.queue.try_send_all(&self.ready).is_err() {
                dropped.push(*id);
            }
        }
        for ts in self.ready_ts.drain(..) {
            record_delivery(&self.hub, ts);
        }
        let deliveries = u64::try_from(self.ready.len().saturating_mul(self.members.len()));
        self.ready.clear();
        self.pacing
            .fanned_out(Instant::now(), deliveries.unwrap_or(u64::MAX));
        for id in dropped {
            // Dropping the queue's sender tells the connection it was too slow (close 4000).
            if self.members.remove(&id).is_some() {
                self.hub.inner.instruments.queue_dropped();
                self.presence_dirty = true;
            }
        }
    }

    /// A gap outlived [`GAP_WAIT`]: read it from the log; what the log no longer holds is skipped.
    async fn fill_gap(&mut self) {
        let log = &self.hub.inner.log;
        match log
            .read_after(self.name.as_str(), self.delivered, CATCH_UP_PAGE)
            .await
        {
            Ok(entries) => {
                for entry in entries {
                    if let Ok(mut message) = serde_json::from_slice::<Message>(&entry.data) {
                        message.seq = entry.seq;
                        self.early.entry(entry.seq).or_insert(message);
                    }
                }
                if let Some((&first, _)) = self.early.first_key_value()
                    && first > self.delivered + 1
                {
                    tracing::warn!(
                        room = self.name.as_str(),
                        from = self.delivered + 1,
                        to = first - 1,
                        "Messages missing from the log were skipped."
                    );
                    self.delivered = first - 1;
                }
                self.gap_since = None;
                self.deliver_ready();
            }
            Err(error) => {
                tracing::warn!(room = self.name.as_str(), error = %error, "Cannot read the log to fill a gap; retrying.");
                self.gap_since = Some(Instant::now());
            }
        }
    }

    async fn send_presence(&mut self) {
        self.presence_dirty = false;
        let members = self.member_names();
        let frame: Frame = ServerFrame::Presence { members: &members }.to_text().into();
        for member in self.members.values() {
            let _ = member.queue.try_send(frame.clone());
        }
        self.publish_presence().await;
    }

    async fn refresh_presence(&mut self) {
        let before = self.remote.len();
        self.remote
            .retain(|_, remote| remote.heard.elapsed() < PRESENCE_TTL);
        if self.remote.len() != before {
            self.presence_dirty = true;
        }
        if !self.members.is_empty() {
            self.publish_presence().await;
        }
    }

    async fn publish_presence(&self) {
        let event = BrokerEvent::Presence {
            replica: self.hub.inner.replica.clone(),
            members: self.own_names(),
        };
        if let Err(error) = self.publish(&event).await {
            tracing::debug!(room = self.name.as_str(), error = %error, "Presence could not be published.");
        }
    }

    /// Asks the replicas that have the room open who is in it; joins wait for the first
    /// answer or `chat.presence_wait`, whichever comes first.
    async fn ask_who_is_here(&mut self) {
        let wait = self.hub.inner.settings.chat.presence_wait;
        if self.hub.inner.alone || wait.is_zero() {
            return;
        }
        let query = BrokerEvent::Query {
            replica: self.hub.inner.replica.clone(),
        };
        match self.publish(&query).await {
            Ok(()) => self.gathering = Some(Instant::now() + wait),
            Err(error) => {
                tracing::warn!(room = self.name.as_str(), error = %error, "Cannot ask the other replicas who is in the room; names are compared with their members once their presence arrives.");
            }
        }
    }

    /// Tells the replica `to` every member of the room this replica knows of.
    async fn answer(&self, to: String) {
        let mut replicas: BTreeMap<String, Vec<String>> = self
            .remote
            .iter()
            .filter(|(_, remote)| !remote.names.is_empty())
            .map(|(replica, remote)| (replica.clone(), remote.names.clone()))
            .collect();
        if !self.members.is_empty() {
            replicas.insert(self.hub.inner.replica.clone(), self.own_names());
        }
        let roster = BrokerEvent::Roster { to, replicas };
        if let Err(error) = self.publish(&roster).await {
            tracing::debug!(room = self.name.as_str(), error = %error, "The room's roster could not be published.");
        }
    }

    async fn publish(&self, event: &BrokerEvent) -> Result<(), StorageError> {
        let payload = Bytes::from(serde_json::to_vec(event).unwrap_or_default());
        self.hub
            .inner
            .broker
            .publish(self.name.as_str(), payload)
            .await
    }
}

/// Records the fan-out of a message stamped `ts` (milliseconds since the epoch).
fn record_delivery(hub: &Hub, ts: u64) {
    let latency_ms = hub.inner.clock.unix_millis().saturating_sub(ts);
    let late = hub.inner.instruments.delivered(latency_ms);
    hub.inner
        .budgets
        .record_ratio(slo::DELIVERY_LATENCY_SLO, 1, u64::from(late));
}
