//! The WebSocket protocol: JSON text frames, one object each, tagged by `type`.
//!
//! Client → server:
//! - `{"type":"join","room":"lobby","name":"ada","last_seq":41}`: the first frame, exactly once.
//!   `last_seq` (optional) resumes: the server sends every message after it, then live ones.
//!   Without it the server sends the room's recent history.
//! - `{"type":"send","text":"hello"}`.
//!
//! Server → client:
//! - `{"type":"joined","room":"lobby","name":"ada (2)","members":["ada","ada (2)"],"last_seq":41}`:
//!   the name the server gave (unique in the room), who is here, and the room's last sequence
//!   number at the moment of joining. History or missed messages follow as `message` frames.
//! - `{"type":"message","seq":42,"name":"ada","text":"hello","ts":1763890000123}`: `name` is the
//!   server's record of the sender, `seq` the room's sequence number (consecutive; a client
//!   resumes from the last it saw), `ts` the server's acceptance time in Unix milliseconds.
//! - `{"type":"presence","members":["ada","bob"]}`: the room's members changed.
//! - `{"type":"error","code":"message_too_large","detail":"…","limit":4096}`: a frame was
//!   refused; the connection stays open. Codes: `invalid_frame`, `not_joined`, `already_joined`,
//!   `invalid_room`, `invalid_name`, `empty_message`, `message_too_large`, `rate_limited`,
//!   `history_truncated`, `unavailable`. An `unavailable` answer to a `send` says in its detail
//!   whether the message certainly was not stored (the broker is down: send it again) or may
//!   have been (storing it failed part way: if it was, it arrives as a `message` like any other).
//!
//! Close codes: 1001 the server is shutting down (reconnect, resume with `last_seq`); 1008 a
//! binary frame or a protocol violation; 1009 a frame over the hard cap; 4000 too slow to keep
//! up (the send queue overflowed; reconnect and resume); 4001 no pong to the heartbeat.

use std::collections::BTreeMap;

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};

/// A server frame serialised and ready to be written to a WebSocket. Clones share the bytes: a
/// room serialises a message once and queues the same frame for every member.
pub type Frame = Utf8Bytes;

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Enter a room.
    Join {
        /// The room.
        room: String,
        /// The display name asked for.
        name: String,
        /// The last sequence number this client saw in the room, to resume after.
        #[serde(default)]
        last_seq: Option<u64>,
    },
    /// Say something.
    Send {
        /// The message.
        text: String,
    },
}

impl ClientFrame {
    /// Parses a text frame: exactly one JSON object of a known `type` and no other members.
    pub fn parse(text: &str) -> Result<ClientFrame, serde_json::Error> {
        // serde reads an internally tagged enum from an array too (`["send","x"]`); the
        // protocol is objects only.
        if !text.trim_start().starts_with('{') {
            return Err(serde::de::Error::custom("a frame is a JSON object"));
        }
        serde_json::from_str(text)
    }
}

/// A message as the room records it: what the log stores (without `seq`, which the log
/// assigns) and what the broker carries (with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Position in the room; 0 until the log assigned it.
    #[serde(default)]
    pub seq: u64,
    /// The sender's name, as the server knows it.
    pub name: String,
    /// The cleaned text.
    pub text: String,
    /// Acceptance time, Unix milliseconds.
    pub ts: u64,
}

/// What the server sends.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    /// The join succeeded.
    Joined {
        /// The room.
        room: &'a str,
        /// The name the server gave.
        name: &'a str,
        /// Everyone in the room.
        members: &'a [String],
        /// The room's last sequence number when the client joined.
        last_seq: u64,
    },
    /// A message in the room.
    Message(&'a Message),
    /// The members changed.
    Presence {
        /// Everyone in the room.
        members: &'a [String],
    },
    /// A frame was refused.
    Error {
        /// Machine-readable reason.
        code: &'a str,
        /// Human-readable reason.
        detail: &'a str,
        /// The limit that was hit, when one was.
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<u64>,
    },
}

impl ServerFrame<'_> {
    /// The frame as JSON text. Serialising these plain structs cannot fail.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What replicas tell each other about a room, through the broker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BrokerEvent {
    /// Messages appended to the room's log, in sequence order.
    Messages {
        /// The messages, with their sequence numbers.
        messages: Vec<Message>,
    },
    /// One replica's members of the room, in full (it replaces the previous list of that replica).
    Presence {
        /// The replica's id.
        replica: String,
        /// Its members.
        members: Vec<String>,
    },
    /// A replica opened the room and asks who is in it, before it lets anyone join there;
    /// every replica that had the room open already answers with a `roster`.
    Query {
        /// The asking replica's id.
        replica: String,
    },
    /// The answer to a `query`: the members of every replica in the room as the answering
    /// replica knows them, its own included.
    Roster {
        /// The id of the replica that asked.
        to: String,
        /// Members by replica id; replicas without members are left out.
        replicas: BTreeMap<String, Vec<String>>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_refuse_unknown_shapes() {
        let join: ClientFrame =
            serde_json::from_str(r#"{"type":"join","room":"lobby","name":"ada"}"#).unwrap();
        assert_eq!(
            join,
            ClientFrame::Join {
                room: "lobby".into(),
                name: "ada".into(),
                last_seq: None
            }
        );
        for bad in [
            r#"{"type":"send"}"#,
            r#"{"type":"send","text":5}"#,
            r#"{"type":"shout","text":"x"}"#,
            r#"{"type":"send","text":"x","name":"someone else"}"#,
            r#"["send","x"]"#,
            "",
        ] {
            assert!(ClientFrame::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn message_frames_carry_the_servers_record() {
        let message = Message {
            seq: 7,
            name: "ada".into(),
            text: "<b>hi</b>".into(),
            ts: 1,
        };
        let text = ServerFrame::Message(&message).to_text();
        assert_eq!(
            text,
            r#"{"type":"message","seq":7,"name":"ada","text":"<b>hi</b>","ts":1}"#
        );
    }
}
