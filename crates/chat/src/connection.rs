//! One WebSocket connection: the join handshake, then a loop that reads client frames, writes
//! queued frames (all that are waiting, in one flush), pings, and says goodbye on shutdown.
//!
//! Limits, in order: a frame over `chat.max_frame_bytes` closes with 1009; a binary frame or
//! one that is not a protocol frame gets an `invalid_frame` error; a message over
//! `chat.max_message_bytes` or over the per-connection rate gets an error frame naming the
//! limit. The connection stays open for everything but the first.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use platform::http::ratelimit::{Decision, TokenBucket};
use tokio::time::Instant;

use crate::config::ChatSettings;
use crate::domain::{DisplayName, RoomName, clean_text};
use crate::hub::ingest::Inbound;
use crate::hub::registry::{Hub, JoinError, Membership};
use crate::metrics;
use crate::protocol::{ClientFrame, Frame, ServerFrame};
use crate::queue;
use crate::state::AppState;

/// Close codes beyond the standard ones.
pub mod close {
    /// The server is going away (shutdown): reconnect and resume.
    pub const GOING_AWAY: u16 = 1001;
    /// A text frame whose payload is not UTF-8 (RFC 6455, section 8.1).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A protocol violation.
    pub const POLICY: u16 = 1008;
    /// A frame over the hard cap.
    pub const TOO_BIG: u16 = 1009;
    /// The send queue overflowed: the client was too slow; reconnect and resume.
    pub const SLOW_CONSUMER: u16 = 4000;
    /// No answer to the heartbeat.
    pub const NO_PONG: u16 = 4001;
}

/// Bytes read from a WebSocket at a time (BENCHMARKS.md, idle connections).
const READ_BUFFER_BYTES: usize = 256;
/// Bytes of frames gathered before a write; the buffer keeps its largest size (up to this plus
/// one frame) for the connection's life, so it is kept small.
const WRITE_BUFFER_BYTES: usize = 4096;
/// Most frames written in one flush.
const WRITE_BATCH: usize = 256;
/// Batch slots a connection keeps between bursts.
const IDLE_BATCH: usize = 8;

/// `GET /ws`: upgrades to a WebSocket bounded in what it may hold, then runs it.
pub async fn upgrade(State(state): State<AppState>, websocket: WebSocketUpgrade) -> Response {
    let chat = &state.settings.chat;
    // axum's defaults (128 KiB read buffer, 64 MiB messages, unbounded write buffer) would let
    // one connection hold megabytes. The read buffer is zero-filled on every read and so
    // resident in every idle connection, and clients send small frames (a longer frame grows
    // the buffer to its length anyway), so it is READ_BUFFER_BYTES, 256 B: 4 KiB to 1 KiB took
    // an idle connection from 14.3 to 11.3 KiB, and 1 KiB to 256 B saved another 0.75 KiB of
    // what dhat counted in each (BENCHMARKS.md, idle memory). Frames are gathered up to
    // WRITE_BUFFER_BYTES before a write (the connection flushes after each batch): with 0,
    // each frame was its own `send`, 70% of the server's CPU at 200,000 deliveries/s.
    let cap = chat.max_frame_bytes.saturating_mul(2);
    websocket
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(1 << 20)
        .max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| run(socket, state.hub, state.settings, state.sessions))
}

/// Runs the connection until the client leaves, misbehaves, falls behind or the server stops.
pub async fn run(
    socket: WebSocket,
    hub: Hub,
    settings: std::sync::Arc<ChatSettings>,
    sessions: platform::shutdown::Sessions,
) {
    // Registered with the platform's drain, which tells it to stop and waits for it.
    let _draining = sessions.enter();
    metrics::connection_opened();
    let (mut sink, mut stream) = socket.split();
    let chat = &settings.chat;
    // The room's frames come on `outgoing`, whose only sender the room holds, so a closed
    // `outgoing` means the room dropped this member. `replies` reaches the same queue weakly:
    // the room's ingest answers through it when a message cannot be stored. Errors about the
    // client's own frames go straight into `batch`, written before the next wait: a connection
    // holds one channel, not two (each costs about 1.5 KiB, and most connections sit idle).
    let mut outgoing: Option<queue::Receiver> = None;
    let mut replies: Option<queue::WeakSender> = None;
    let mut membership: Option<Membership> = None;
    let mut bucket = TokenBucket::new(
        chat.rate_per_second,
        chat.rate_burst,
        std::time::Instant::now(),
    );
    let mut last_heard = Instant::now();
    let mut heartbeat = tokio::time::interval_at(Instant::now() + chat.heartbeat, chat.heartbeat);
    let join_deadline = tokio::time::sleep(chat.join_timeout);
    tokio::pin!(join_deadline);
    // One watch on the stop signal for the whole connection, not a new one per frame.
    let stopping = sessions.stopping();
    tokio::pin!(stopping);
    // Grows on the first write only: an idle connection holds no batch buffer.
    let mut batch: Vec<Frame> = Vec::new();

    let goodbye: Option<(u16, String)> = loop {
        // Only rejections of the client's own frames are left here between turns.
        if !batch.is_empty() && write_all(&mut sink, &mut batch).await.is_err() {
            break None;
        }
        // In this order: stopping wins; a client's frames before the room's (a flooding client
        // only starves itself); a dropped queue before the heartbeat, so a slow consumer hears
        // why it was dropped.
        tokio::select! {
            biased;
            () = &mut stopping => {
                break Some((close::GOING_AWAY, "the server is shutting down; reconnect and resume with last_seq".to_owned()));
            }
            incoming = stream.next() => {
                let incoming = match incoming {
                    Some(Ok(incoming)) => incoming,
                    Some(Err(error)) if is_invalid_utf8(&error) => {
                        break Some((close::INVALID_PAYLOAD, "a text frame must be UTF-8".to_owned()));
                    }
                    _ => break None,
                };
                last_heard = Instant::now();
                let text = match incoming {
                    WsMessage::Text(text) => text,
                    WsMessage::Binary(_) => {
                        reject(&mut batch, "invalid_frame", "frames are JSON text, not binary", None);
                        continue;
                    }
                    WsMessage::Close(_) => break None,
                    WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
                };
                if text.len() > chat.max_frame_bytes {
                    break Some((close::TOO_BIG, format!("frame over {} bytes", chat.max_frame_bytes)));
                }
                let frame = match ClientFrame::parse(text.as_str()) {
                    Ok(frame) => frame,
                    Err(error) => {
                        reject(&mut batch, "invalid_frame", &format!("not a protocol frame: {error}"), None);
                        continue;
                    }
                };
                match frame {
                    ClientFrame::Join { room, name, last_seq } => {
                        if membership.is_some() {
                            reject(&mut batch, "already_joined", "a connection joins one room, once", None);
                            continue;
                        }
                        let room = match RoomName::parse(&room) {
                            Ok(room) => room,
                            Err(error) => { reject(&mut batch, "invalid_room", &error.to_string(), None); continue; }
                        };
                        let name = match DisplayName::parse(&name) {
                            Ok(name) => name,
                            Err(error) => { reject(&mut batch, "invalid_name", &error.to_string(), Some(DisplayName::MAX_CHARS as u64)); continue; }
                        };
                        let (room_queue, room_frames) = queue::bounded(chat.send_queue.max(chat.history + 16));
                        let reply = room_queue.downgrade();
                        match hub.join(&room, name, last_seq, room_queue).await {
                            Ok(joined) => {
                                membership = Some(joined);
                                replies = Some(reply);
                                outgoing = Some(room_frames);
                            }
                            Err(JoinError::Storage(error)) => {
                                tracing::warn!(error = %error, "A join failed.");
                                reject(&mut batch, "unavailable", "the room cannot be joined right now; retry shortly", None);
                            }
                            Err(JoinError::Closing) => break Some((close::GOING_AWAY, "the server is stopping; reconnect".to_owned())),
                        }
                    }
                    ClientFrame::Send { text } => {
                        let (Some(member), Some(reply)) = (&membership, &replies) else {
                            reject_message(&mut batch, "not_joined", "join a room first", None);
                            continue;
                        };
                        if text.len() > chat.max_message_bytes {
                            reject_message(&mut batch, "message_too_large", &format!("messages are at most {} bytes", chat.max_message_bytes), Some(chat.max_message_bytes as u64));
                            continue;
                        }
                        if let Decision::Deny { retry_after } = bucket.take(std::time::Instant::now()) {
                            reject_message(&mut batch, "rate_limited", &format!("at most {} messages per second (bursts of {}); retry in {} ms", chat.rate_per_second, chat.rate_burst, retry_after.as_millis().max(1)), Some(u64::from(chat.rate_burst)));
                            continue;
                        }
                        let text = match clean_text(&text) {
                            Ok(text) => text,
                            Err(error) => { reject_message(&mut batch, "empty_message", &error.to_string(), None); continue; }
                        };
                        let inbound = Inbound { name: member.name.as_str().to_owned(), text, reply: reply.clone() };
                        if member.inbound.send(inbound).await.is_err() {
                            break Some((close::GOING_AWAY, "the room closed; reconnect and resume".to_owned()));
                        }
                    }
                }
            }
            received = recv_room(&mut outgoing, &mut batch) => {
                if received == 0 {
                    // Only the room drops a member's queue: it fell too far behind.
                    break Some((close::SLOW_CONSUMER, "too slow to keep up; reconnect with last_seq to resume".to_owned()));
                }
                let written = write_all(&mut sink, &mut batch).await;
                // A burst (history on join, a busy minute) must not stay allocated for the
                // connection's life: an idle connection keeps a handful of slots.
                batch.shrink_to(IDLE_BATCH);
                if written.is_err() {
                    break None;
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > chat.heartbeat * 2 {
                    break Some((close::NO_PONG, "no answer to the heartbeat".to_owned()));
                }
                if sink.send(WsMessage::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
            () = &mut join_deadline, if membership.is_none() => {
                break Some((close::POLICY, format!("no join within {:?}", chat.join_timeout)));
            }
        }
    };
    drop(membership);
    if let Some((code, reason)) = goodbye {
        let close = CloseFrame {
            code,
            reason: reason.into(),
        };
        // Bounded: a client that stopped reading must not hold the shutdown. Then wait for the
        // client's close before dropping the socket: closing with its frames unread would
        // reset the connection, and a reset makes the client discard our close frame.
        let closing = async {
            if sink.send(WsMessage::Close(Some(close))).await.is_ok() {
                while let Some(Ok(message)) = stream.next().await {
                    if matches!(message, WsMessage::Close(_)) {
                        break;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), closing).await;
    }
    metrics::connection_closed();
}

/// Moves what the room queued into `batch` (at most [`WRITE_BATCH`] frames), waiting for the
/// first; 0 when the room dropped the member; never before a join.
async fn recv_room(outgoing: &mut Option<queue::Receiver>, batch: &mut Vec<Frame>) -> usize {
    match outgoing {
        Some(frames) => frames.recv_many(batch, WRITE_BATCH).await,
        None => futures::future::pending().await,
    }
}

/// Writes every frame of `batch` and flushes once: one system call for a burst, not one each.
async fn write_all<S>(sink: &mut S, batch: &mut Vec<Frame>) -> Result<(), axum::Error>
where
    S: futures::Sink<WsMessage, Error = axum::Error> + Unpin,
{
    for frame in batch.drain(..) {
        sink.feed(WsMessage::Text(frame)).await?;
    }
    sink.flush().await
}

/// Queues an error frame about the client's own frame; the loop writes it before waiting again.
fn reject(batch: &mut Vec<Frame>, code: &str, detail: &str, limit: Option<u64>) {
    let frame = ServerFrame::Error {
        code,
        detail,
        limit,
    }
    .to_text();
    batch.push(frame.into());
}

/// A refused `send`: counted as rejected (the client's, not the SLO's).
fn reject_message(batch: &mut Vec<Frame>, code: &str, detail: &str, limit: Option<u64>) {
    metrics::message_rejected();
    reject(batch, code, detail, limit);
}

/// Whether reading failed on a text frame that is not UTF-8, which RFC 6455 answers with a
/// close frame (1007) rather than a dropped connection.
fn is_invalid_utf8(error: &axum::Error) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<tokio_tungstenite::tungstenite::Error>())
        .is_some_and(|error| matches!(error, tokio_tungstenite::tungstenite::Error::Utf8(_)))
}
