//! A WebSocket client that speaks the protocol, and `spawn_with`.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use platform::testing::TestApp;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest wait for a frame the test expects.
pub(crate) const FRAME_DEADLINE: Duration = Duration::from_secs(10);

/// chat in this process on `memory:` storage and broker, plus `overrides`.
pub(crate) async fn spawn_with(overrides: &[(&str, &str)]) -> TestApp {
    TestApp::spawn(&chat::service(), overrides).await
}

/// The `ws://` URL of `/ws` of the server at `http_base` (`http://host:port`).
pub(crate) fn ws_url(http_base: &str) -> String {
    format!("{}/ws", http_base.replacen("http", "ws", 1))
}

/// A room no other test uses.
pub(crate) fn unique_room() -> String {
    format!("r{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

pub(crate) struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The room's members as the last `joined` or `presence` frame read said.
    members: Value,
}

impl Client {
    pub(crate) async fn connect(url: &str) -> Client {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("WebSocket connects");
        Client {
            socket,
            members: Value::Null,
        }
    }

    pub(crate) async fn send_json(&mut self, frame: Value) {
        self.socket
            .send(Message::text(frame.to_string()))
            .await
            .expect("frame is sent");
    }

    pub(crate) async fn send_raw(&mut self, message: Message) {
        self.socket.send(message).await.expect("frame is sent");
    }

    pub(crate) async fn say(&mut self, text: &str) {
        self.send_json(json!({ "type": "send", "text": text }))
            .await;
    }

    /// Joins and returns the `joined` frame.
    pub(crate) async fn join(&mut self, room: &str, name: &str, last_seq: Option<u64>) -> Value {
        let mut frame = json!({ "type": "join", "room": room, "name": name });
        if let Some(seq) = last_seq {
            frame["last_seq"] = json!(seq);
        }
        self.send_json(frame).await;
        self.next_of("joined").await
    }

    /// The next text frame, parsed; fails on close or after [`FRAME_DEADLINE`].
    pub(crate) async fn next_frame(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(FRAME_DEADLINE, self.socket.next())
                .await
                .expect("a frame within the deadline")
                .expect("the connection is open")
                .expect("a valid frame");
            match message {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
                    if frame["type"] == "joined" || frame["type"] == "presence" {
                        self.members = frame["members"].clone();
                    }
                    return frame;
                }
                Message::Close(close) => panic!("closed unexpectedly: {close:?}"),
                _ => continue,
            }
        }
    }

    /// The next frame of `kind`, skipping presence frames (and failing on any other kind).
    pub(crate) async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next_frame().await;
            if frame["type"] == kind {
                return frame;
            }
            assert_eq!(frame["type"], "presence", "expected `{kind}`, got {frame}");
        }
    }

    /// Returns once the room's members are `expected` (at once if the last presence said so);
    /// only presence frames may come meanwhile.
    pub(crate) async fn wait_for_members(&mut self, expected: Value) {
        while self.members != expected {
            let frame = self.next_frame().await;
            assert_eq!(
                frame["type"], "presence",
                "waiting for members {expected}, got {frame}"
            );
        }
    }

    /// The next `message` frames, `count` of them.
    pub(crate) async fn messages(&mut self, count: usize) -> Vec<Value> {
        let mut frames = Vec::with_capacity(count);
        while frames.len() < count {
            frames.push(self.next_of("message").await);
        }
        frames
    }

    /// Reads until the server closes, and returns the close code and reason (text frames
    /// before it are skipped).
    pub(crate) async fn closed(&mut self) -> (u16, String) {
        loop {
            let message = tokio::time::timeout(FRAME_DEADLINE, self.socket.next())
                .await
                .expect("the close within the deadline");
            match message {
                Some(Ok(Message::Close(Some(close)))) => {
                    return (close.code.into(), close.reason.to_string());
                }
                Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
                Some(Ok(_)) => continue,
                Some(Err(error)) => panic!("connection failed before a close frame: {error}"),
            }
        }
    }
}
