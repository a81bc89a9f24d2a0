//! The WebSocket protocol under random and malformed frames, against the real binary: JSON of
//! every wrong shape, invalid UTF-8 in text frames, binary frames, control characters and
//! invisible code points, oversized messages, stray pings and pongs. Two well-behaved members
//! share the room the whole time. The server must not panic, must never close them, and must
//! relay and store only valid messages. The random frames come from a fixed seed, so a failure
//! can be replayed.

use chat::domain::{DisplayName, clean_text};
use futures::StreamExt;
use platform::testing::ServiceProcess;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::helpers::{Client, unique_room};

const SEED: u64 = 0x5eed_c4a7;
const CONNECTIONS: usize = 160;
const FRAMES_PER_CONNECTION: usize = 30;
const AT_ONCE: usize = 16;
const MAX_MESSAGE_BYTES: usize = 4096;

/// Pieces random text is made of: printable text, markup, and what must never get through.
const PIECES: &[&str] = &[
    "hello",
    " ",
    "ünïcødé",
    "日本語",
    "🦀",
    "e\u{301}",
    "<script>alert(1)</script>",
    "\"",
    "\\",
    "{",
    "}",
    "\n",
    "\t",
    "\u{0}",
    "\u{7}",
    "\u{1b}[31m",
    "\u{7f}",
    "\u{85}",
    "\u{200b}",
    "\u{202e}",
    "\u{feff}",
    "\u{fffd}",
    "\u{e000}",
];

fn text(rng: &mut StdRng, max_pieces: usize) -> String {
    let pieces = rng.random_range(0..=max_pieces);
    (0..pieces)
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

fn bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let len = rng.random_range(0..=max);
    (0..len).map(|_| rng.random()).collect()
}

/// One random frame: valid, nearly valid, or garbage.
fn frame(rng: &mut StdRng, room: &str) -> Message {
    let json = |value: Value| Message::text(value.to_string());
    match rng.random_range(0..18) {
        0 | 1 => json(json!({"type": "join", "room": room, "name": text(rng, 12)})),
        2..=5 => json(json!({"type": "send", "text": text(rng, 40)})),
        6 => json(json!({"type": "send", "text": "x".repeat(rng.random_range(4000..6000))})),
        7 => json(json!({"type": "send", "text": text(rng, 4), "extra": true})),
        8 => json(json!({"type": "join", "room": text(rng, 3), "name": "n", "last_seq": -1})),
        9 => json(json!({"type": "join", "room": room, "name": "n", "last_seq": u64::MAX})),
        10 => json(json!({"type": "send", "text": {"nested": [1, 2]}})),
        11 => json(json!(["send", "an array"])),
        12 => json(json!({"type": text(rng, 2)})),
        13 => {
            let valid = json!({"type": "send", "text": text(rng, 10)}).to_string();
            let cut = valid.chars().count();
            Message::text(
                valid
                    .chars()
                    .take(rng.random_range(0..cut))
                    .collect::<String>(),
            )
        }
        14 => Message::text(text(rng, 20)),
        15 => Message::binary(bytes(rng, 200)),
        // A text frame whose payload is not UTF-8: the server must refuse it, not panic.
        16 => Message::Frame(Frame::message(
            vec![0xff, 0xfe, b'{', 0xc3],
            OpCode::Data(Data::Text),
            true,
        )),
        _ => {
            if rng.random() {
                Message::Ping(bytes(rng, 100).into())
            } else {
                Message::Pong(bytes(rng, 100).into())
            }
        }
    }
}

/// Sends one connection's worth of random frames, ignoring whatever the server answers or
/// whether it closes this connection (that is its right with garbage).
async fn misbehave(url: String, room: String, seed: u64) {
    use futures::SinkExt;
    let mut rng = StdRng::seed_from_u64(seed);
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
        return;
    };
    for _ in 0..FRAMES_PER_CONNECTION {
        if socket.send(frame(&mut rng, &room)).await.is_err() {
            return;
        }
    }
    let _ = socket.close(None).await;
    // Read until the server's close (or its end), so every frame was processed.
    while let Some(Ok(_)) = socket.next().await {}
}

/// A relayed or stored message as the server may let it out: a clean name, clean text within
/// the limit, and the next sequence number.
fn assert_valid(message: &Value, previous_seq: &mut u64) {
    let text = message["text"].as_str().expect("a text");
    let name = message["name"].as_str().expect("a name");
    assert!(text.len() <= MAX_MESSAGE_BYTES, "over the limit: {message}");
    assert_eq!(
        clean_text(text).ok().as_deref(),
        Some(text),
        "unclean: {message}"
    );
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "control character: {message}"
    );
    let reparsed = DisplayName::parse(name).map(|name| name.as_str().to_owned());
    assert_eq!(reparsed.ok().as_deref(), Some(name), "bad name: {message}");
    let seq = message["seq"].as_u64().expect("a sequence number");
    assert_eq!(seq, *previous_seq + 1, "out of order: {message}");
    *previous_seq = seq;
}

/// Reads a member's frames until `sentinel` is said; returns the messages before it.
async fn read_until(mut member: Client, sentinel: String) -> (Client, Vec<Value>) {
    let mut messages = Vec::new();
    loop {
        let frame = member.next_frame().await;
        assert_ne!(frame["type"], "error", "a well-behaved member got {frame}");
        if frame["type"] == "message" {
            if frame["text"] == sentinel.as_str() {
                return (member, messages);
            }
            messages.push(frame);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn random_and_malformed_frames_never_hurt_the_room() {
    let server = ServiceProcess::start(env!("CARGO_BIN_EXE_chat"), "chat", &[]);
    let url = format!("ws://{}/ws", server.api);
    let room = unique_room();
    let mut ada = Client::connect(&url).await;
    let first_seq = ada.join(&room, "ada", None).await["last_seq"]
        .as_u64()
        .unwrap_or(0);
    let mut bob = Client::connect(&url).await;
    bob.join(&room, "bob", None).await;
    let sentinel = format!("end of fuzz {}", uuid::Uuid::new_v4());
    let readers = [ada, bob].map(|member| tokio::spawn(read_until(member, sentinel.clone())));

    for batch in (0..CONNECTIONS).collect::<Vec<_>>().chunks(AT_ONCE) {
        let connections: Vec<_> = batch
            .iter()
            .map(|&i| tokio::spawn(misbehave(url.clone(), room.clone(), SEED + i as u64)))
            .collect();
        for connection in connections {
            connection.await.expect("a fuzz connection task");
        }
    }
    let mut herald = Client::connect(&url).await;
    herald.join(&room, "herald", None).await;
    herald.say(&sentinel).await;

    let mut members = Vec::new();
    for reader in readers {
        let (member, messages) = reader.await.expect("a member stayed connected and read");
        let mut seq = first_seq;
        for message in &messages {
            assert_valid(message, &mut seq);
        }
        assert!(!messages.is_empty(), "the valid sends were relayed");
        members.push(member);
    }

    // Both members are still in the room and still talk to each other.
    let [mut ada, mut bob] = <[Client; 2]>::try_from(members).unwrap_or_else(|_| unreachable!());
    ada.say("still here").await;
    assert_eq!(bob.next_of("message").await["text"], "still here");
    assert_eq!(ada.next_of("message").await["text"], "still here");

    // What the room stored (its history, as a newcomer gets it) is as clean.
    let mut newcomer = Client::connect(&url).await;
    let joined = newcomer.join(&room, "newcomer", None).await;
    let last_seq = joined["last_seq"].as_u64().expect("the room's last number");
    let mut history = Vec::new();
    while history.last().map(|m: &Value| m["seq"].as_u64()) != Some(Some(last_seq)) {
        let frame = newcomer.next_frame().await;
        if frame["type"] == "message" {
            history.push(frame);
        }
    }
    let mut seq = history[0]["seq"].as_u64().expect("a sequence number") - 1;
    for message in &history {
        assert_valid(message, &mut seq);
    }

    // No task panicked (the platform logs every panic), and the process still serves.
    let health = reqwest::get(format!("http://{}/livez", server.api)).await;
    assert_eq!(
        health.map(|r| r.status()).ok(),
        Some(reqwest::StatusCode::OK)
    );
    let panics: Vec<String> = server
        .logs
        .try_iter()
        .filter(|line| line.contains("\"Panicked.\""))
        .collect();
    assert!(panics.is_empty(), "the server panicked: {panics:?}");
}
