//! A room's task: it owns the room's members on this replica, and delivers what the broker
//! carries (from every replica, this one included) in sequence order: messages that arrive
//! early wait for the gap before them, which is filled from the log if the broker lost it.
//! Each message is serialised once and the same bytes are queued for every member, at once
//! while the room is quiet and at a bounded pace while it is busy (see [`crate::pacing`]); a
//! member whose bounded queue is full is dropped (it resumes on reconnect), so one slow client
//! never stalls a room.
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
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use platform::storage::StorageError;
use platform::storage::pubsub::Subscription;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::domain::{DisplayName, Likeness, RoomName};
use crate::hub::replica::Replica;
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
/// Most frames waiting for a paced fan-out; more go out at once (a member writes at most 256
/// frames per flush anyway).
const MAX_READY: usize = 256;
/// Messages read from the log per call when catching up.
const CATCH_UP_PAGE: usize = 1000;
/// How long an empty room keeps its tasks, so a reconnecting member finds them warm.
const IDLE_ROOM: Duration = Duration::from_secs(30);

/// What a room's task is asked to do: by joins, by a membership ending, and by ingest.
pub(super) enum Command {
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
    replica: Arc<Replica>,
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

/// Runs the room `name` until it has been empty for [`IDLE_ROOM`], or its command channel or
/// broker subscription ends. `forget` takes the room out of the registry; it is called once
/// the room takes no more joins, before the members still here see their queues close.
pub(super) async fn run(
    replica: Arc<Replica>,
    name: RoomName,
    mut commands: mpsc::Receiver<Command>,
    mut subscription: Subscription,
    forget: impl FnOnce(),
) {
    let delivered = match replica.log.read_last(name.as_str(), 1).await {
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
            forget();
            return;
        }
    };
    let mut room = Room {
        replica,
        name,
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
    forget();
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
        let log = &self.replica.log;
        let history = self.replica.settings.chat.history;
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
                if replica == self.replica.id {
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
                if replica != self.replica.id && self.gathering.is_none() {
                    self.answer(replica).await;
                }
            }
            Ok(BrokerEvent::Roster { to, replicas }) => {
                // Another replica's view is complete only for what the broker carried before
                // this replica's own query, so it fills in replicas not heard from directly.
                if to == self.replica.id && self.gathering.is_some() {
                    for (replica, members) in replicas {
                        if replica != self.replica.id && !members.is_empty() {
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
            record_delivery(&self.replica, ts);
        }
        let deliveries = u64::try_from(self.ready.len().saturating_mul(self.members.len()));
        self.ready.clear();
        self.pacing
            .fanned_out(Instant::now(), deliveries.unwrap_or(u64::MAX));
        for id in dropped {
            // Dropping the queue's sender tells the connection it was too slow (close 4000).
            if self.members.remove(&id).is_some() {
                self.replica.instruments.queue_dropped();
                self.presence_dirty = true;
            }
        }
    }

    /// A gap outlived [`GAP_WAIT`]: read it from the log; what the log no longer holds is skipped.
    async fn fill_gap(&mut self) {
        let log = &self.replica.log;
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
            replica: self.replica.id.clone(),
            members: self.own_names(),
        };
        if let Err(error) = self.publish(&event).await {
            tracing::debug!(room = self.name.as_str(), error = %error, "Presence could not be published.");
        }
    }

    /// Asks the replicas that have the room open who is in it; joins wait for the first
    /// answer or `chat.presence_wait`, whichever comes first.
    async fn ask_who_is_here(&mut self) {
        let wait = self.replica.settings.chat.presence_wait;
        if self.replica.alone || wait.is_zero() {
            return;
        }
        let query = BrokerEvent::Query {
            replica: self.replica.id.clone(),
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
            replicas.insert(self.replica.id.clone(), self.own_names());
        }
        let roster = BrokerEvent::Roster { to, replicas };
        if let Err(error) = self.publish(&roster).await {
            tracing::debug!(room = self.name.as_str(), error = %error, "The room's roster could not be published.");
        }
    }

    async fn publish(&self, event: &BrokerEvent) -> Result<(), StorageError> {
        let payload = Bytes::from(serde_json::to_vec(event).unwrap_or_default());
        self.replica
            .broker
            .publish(self.name.as_str(), payload)
            .await
    }
}

/// Records the fan-out of a message stamped `ts` (milliseconds since the epoch).
fn record_delivery(replica: &Replica, ts: u64) {
    let latency_ms = replica.clock.unix_millis().saturating_sub(ts);
    let late = replica.instruments.delivered(latency_ms);
    replica
        .budgets
        .record_ratio(slo::DELIVERY_LATENCY_SLO, 1, u64::from(late));
}
