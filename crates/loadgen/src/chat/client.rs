//! The chat protocol as a client speaks it: connect to `/ws`, join a room, read frames. Message
//! frames are recognised without a full JSON parse (the receivers' hot path); the rest go
//! through serde.

use std::time::Duration;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A joined connection.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long connecting and joining may take.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A frame from the server, as far as the load generator cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// `{"type":"message","seq":N,…,"text":"…",…}`: the text is borrowed, unescaped only when it
    /// holds no escapes (ours never do).
    Message { seq: u64, text: &'a str },
    /// `{"type":"joined",…,"last_seq":N}`.
    Joined { last_seq: u64 },
    /// `{"type":"presence",…}`.
    Presence,
    /// `{"type":"error","code":…}`.
    Error(String),
    /// Anything else.
    Other,
}

/// Classifies a text frame.
pub fn classify(frame: &str) -> Incoming<'_> {
    if let Some(message) = fast_message(frame) {
        return message;
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(frame) else {
        return Incoming::Other;
    };
    match value["type"].as_str() {
        Some("joined") => Incoming::Joined {
            last_seq: value["last_seq"].as_u64().unwrap_or(0),
        },
        Some("presence") => Incoming::Presence,
        Some("error") => Incoming::Error(value["code"].as_str().unwrap_or("?").to_owned()),
        _ => Incoming::Other,
    }
}

/// `{"type":"message","seq":N,"name":"…","text":"…","ts":N}` as the server writes it (serde's
/// field order), with no escapes in the text.
fn fast_message(frame: &str) -> Option<Incoming<'_>> {
    let rest = frame.strip_prefix(r#"{"type":"message","seq":"#)?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    let seq = rest[..digits].parse().ok()?;
    let text_start = rest.find(r#","text":""#)? + r#","text":""#.len();
    let text = &rest[text_start..];
    let text = &text[..text.find('"')?];
    if text.contains('\\') {
        return None;
    }
    Some(Incoming::Message { seq, text })
}

/// The join frame.
pub fn join_frame(room: &str, name: &str) -> String {
    serde_json::json!({ "type": "join", "room": room, "name": name }).to_string()
}

/// A send frame; `text` holds no characters JSON must escape (our payloads never do).
pub fn send_frame(text: &str) -> String {
    format!(r#"{{"type":"send","text":"{text}"}}"#)
}

/// Connects to `url` (`ws://host:port/ws`) and joins `room` as `name`; returns the socket and
/// the room's `last_seq` at the moment of joining. `small` keeps the client's buffers small, for
/// many idle connections.
pub async fn connect_and_join(
    url: &str,
    room: &str,
    name: &str,
    small: bool,
) -> anyhow::Result<(Socket, u64)> {
    let mut config = WebSocketConfig::default();
    if small {
        config = config.read_buffer_size(4096).write_buffer_size(0);
    }
    let attempt = async {
        let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        socket
            .send(Message::text(join_frame(room, name)))
            .await
            .context("cannot send the join frame")?;
        while let Some(frame) = socket.next().await {
            let frame = frame.context("the connection failed before `joined`")?;
            if let Message::Text(text) = frame {
                match classify(text.as_str()) {
                    Incoming::Joined { last_seq } => return Ok((socket, last_seq)),
                    Incoming::Error(code) => bail!("the join was refused: {code}"),
                    _ => {}
                }
            }
        }
        bail!("the server closed the connection before `joined`")
    };
    tokio::time::timeout(JOIN_TIMEOUT, attempt)
        .await
        .with_context(|| format!("no `joined` from {url} within {JOIN_TIMEOUT:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_frames_are_read_without_serde() {
        let frame =
            r#"{"type":"message","seq":42,"name":"m1","text":"3:7:123:....","ts":1763890000123}"#;
        assert_eq!(
            classify(frame),
            Incoming::Message {
                seq: 42,
                text: "3:7:123:...."
            }
        );
    }

    #[test]
    fn other_frames_go_through_serde() {
        assert_eq!(
            classify(r#"{"type":"joined","room":"r","name":"a","members":["a"],"last_seq":41}"#),
            Incoming::Joined { last_seq: 41 }
        );
        assert_eq!(
            classify(r#"{"type":"presence","members":["a"]}"#),
            Incoming::Presence
        );
        assert_eq!(
            classify(r#"{"type":"error","code":"rate_limited","detail":"x"}"#),
            Incoming::Error("rate_limited".to_owned())
        );
        // A message with an escaped text is not ours: not misread, just "other".
        assert_eq!(
            classify(r#"{"type":"message","seq":1,"name":"a","text":"a\"b","ts":1}"#),
            Incoming::Other
        );
        assert_eq!(classify("not json"), Incoming::Other);
    }

    #[test]
    fn frames_we_send_are_protocol_frames() {
        let join: serde_json::Value =
            serde_json::from_str(&join_frame("lobby", "m1")).expect("JSON");
        assert_eq!(
            join,
            serde_json::json!({"type": "join", "room": "lobby", "name": "m1"})
        );
        assert_eq!(send_frame("1:2:3:."), r#"{"type":"send","text":"1:2:3:."}"#);
    }
}
