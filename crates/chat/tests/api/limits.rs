//! Limits: message size, frame size, rate, join deadline, heartbeat, slow consumers.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Client, FRAME_DEADLINE, spawn_with, unique_room, ws_url};

#[tokio::test]
async fn a_message_over_the_limit_gets_an_error_naming_it_and_the_connection_stays() {
    let app = spawn_with(&[]).await;
    let mut client = Client::connect(&ws_url(&app.address)).await;
    client.join(&unique_room(), "ada", None).await;
    client.say(&"x".repeat(4097)).await;
    let error = client.next_of("error").await;
    assert_eq!(error["code"], "message_too_large");
    assert_eq!(error["limit"], 4096);
    let exactly = "y".repeat(4096);
    client.say(&exactly).await;
    assert_eq!(client.next_of("message").await["text"], exactly.as_str());
}

#[tokio::test]
async fn a_frame_over_the_hard_cap_closes_with_1009() {
    let app = spawn_with(&[("chat.max_frame_bytes", "10000")]).await;
    let mut client = Client::connect(&ws_url(&app.address)).await;
    client.join(&unique_room(), "ada", None).await;
    client.say(&"x".repeat(10_001)).await;
    let (code, reason) = client.closed().await;
    assert_eq!(code, 1009);
    assert!(reason.contains("10000"), "{reason}");
}

#[tokio::test]
async fn over_the_rate_a_message_is_refused_and_the_connection_stays() {
    // One token every 100 s: the third message is over the rate however slowly it arrives.
    let app = spawn_with(&[("chat.rate_burst", "2"), ("chat.rate_per_second", "0.01")]).await;
    let mut client = Client::connect(&ws_url(&app.address)).await;
    client.join(&unique_room(), "ada", None).await;
    client.say("one").await;
    client.say("two").await;
    client.say("three").await;
    // Errors and room messages travel separately: collect three frames in any order.
    let mut frames = Vec::new();
    while frames.len() < 3 {
        let frame = client.next_frame().await;
        if frame["type"] != "presence" {
            frames.push(frame);
        }
    }
    let error = frames
        .iter()
        .find(|f| f["type"] == "error")
        .expect("an error frame");
    assert_eq!(error["code"], "rate_limited");
    assert_eq!(error["limit"], 2);
    let texts: Vec<&str> = frames
        .iter()
        .filter(|f| f["type"] == "message")
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["one", "two"]);
    let metrics = app.admin_get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"chat_messages_total{outcome="rejected"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"chat_messages_total{outcome="accepted"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_client_that_never_joins_is_closed_with_1008() {
    let app = spawn_with(&[("chat.join_timeout", "200ms")]).await;
    let mut client = Client::connect(&ws_url(&app.address)).await;
    let (code, reason) = client.closed().await;
    assert_eq!(code, 1008);
    assert!(reason.contains("join"), "{reason}");
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed_with_4001() {
    let app = spawn_with(&[("chat.heartbeat", "100ms")]).await;
    // WebSocket by hand, not through tungstenite: tungstenite answers every ping it reads, so
    // a client that sleeps and then reads races the server's verdict. This one reads every
    // frame and answers none, however late the server gets to deciding.
    let mut stream = raw_websocket(&app.address).await;
    let join = json!({"type": "join", "room": unique_room(), "name": "sleepy"}).to_string();
    stream
        .write_all(&masked_text_frame(join.as_bytes()))
        .await
        .unwrap();
    // Only bounds a server that never closes; the close itself comes after two heartbeats.
    assert_eq!(close_code(&mut stream).await, 4001);
}

const CLOSE: u8 = 0x8;

/// The code of the server's close frame, reading past any other frame; the deadline only bounds
/// a server that never closes.
async fn close_code(stream: &mut tokio::net::TcpStream) -> u16 {
    let close = tokio::time::timeout(FRAME_DEADLINE, async {
        loop {
            let (opcode, payload) = read_frame(stream).await;
            if opcode == CLOSE {
                break payload;
            }
        }
    })
    .await
    .expect("a close frame within the deadline");
    assert!(close.len() >= 2, "a close frame with a code: {close:?}");
    u16::from_be_bytes([close[0], close[1]])
}

/// A WebSocket to chat's `/ws` opened by hand, with the server's 101 read and nothing after it.
async fn raw_websocket(address: &str) -> tokio::net::TcpStream {
    let addr = address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let upgrade = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://localhost\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(upgrade.as_bytes()).await.unwrap();
    // Byte by byte, so that no frame after the head is read along with it.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_is_closed_with_1007() {
    let app = spawn_with(&[]).await;
    let mut stream = raw_websocket(&app.address).await;
    stream
        .write_all(&masked_text_frame(&[0xff, 0xfe, b'{', 0xc3]))
        .await
        .unwrap();
    // A close frame, not a dropped connection (which fails the read).
    assert_eq!(close_code(&mut stream).await, 1007);
}

/// A final text frame as a client must send it: masked (RFC 6455 §5.3).
fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x81];
    match payload.len() {
        short @ 0..=125 => frame.push(0x80 | short as u8),
        medium @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(medium as u16).to_be_bytes());
        }
        long => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(long as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

/// The opcode and payload of the next frame from the server (unmasked, unfragmented).
async fn read_frame(stream: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
    let opcode = stream.read_u8().await.unwrap() & 0x0f;
    let length = match stream.read_u8().await.unwrap() & 0x7f {
        126 => u64::from(stream.read_u16().await.unwrap()),
        127 => stream.read_u64().await.unwrap(),
        short => u64::from(short),
    };
    let mut payload = vec![0; usize::try_from(length).unwrap()];
    stream.read_exact(&mut payload).await.unwrap();
    (opcode, payload)
}

#[tokio::test]
async fn a_slow_consumer_is_disconnected_with_4000_and_the_room_goes_on() {
    let app = spawn_with(&[
        ("chat.send_queue", "1"),
        ("chat.history", "1"),
        ("chat.rate_per_second", "100000"),
        ("chat.rate_burst", "100000"),
        ("chat.max_message_bytes", "60000"),
    ])
    .await;
    let url = ws_url(&app.address);
    let room = unique_room();
    let mut slow = Client::connect(&url).await;
    slow.join(&room, "slow", None).await;
    let mut fast = Client::connect(&url).await;
    fast.join(&room, "fast", None).await;
    // 20 MB: more than the socket buffers between server and `slow` hold, while it reads nothing.
    let text = "z".repeat(50_000);
    for _ in 0..400 {
        fast.say(&text).await;
        // Keep `fast` itself drained, so only `slow` falls behind.
        fast.next_of("message").await;
    }
    let (code, reason) = slow.closed().await;
    assert_eq!(code, 4000);
    assert!(reason.contains("resume"), "{reason}");
    let metrics = app.admin_get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("chat_send_queue_drops_total 1"),
        "{metrics}"
    );
}

/// A WebSocket keeps its place under `server.max_connections` for as long as it is open, after
/// hyper has handed its socket over: past the cap, a new connection is closed unanswered.
#[tokio::test]
async fn open_websockets_count_against_max_connections() {
    let app = spawn_with(&[("server.max_connections", "2")]).await;
    let url = ws_url(&app.address);
    let room = unique_room();
    let mut first = Client::connect(&url).await;
    first.join(&room, "first", None).await;
    let mut second = Client::connect(&url).await;
    second.join(&room, "second", None).await;

    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut refused = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = refused
        .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(FRAME_DEADLINE, refused.read_to_end(&mut answer))
        .await
        .expect("the connection past the cap is closed");
    assert!(
        read.is_err() || answer.is_empty(),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // A WebSocket that closes gives its place back.
    drop(first);
    platform::testing::eventually(|| async {
        let Ok(mut stream) = tokio::net::TcpStream::connect(&addr).await else {
            return false;
        };
        if stream
            .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .is_err()
        {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer).await;
        answer.starts_with("HTTP/1.1 200")
    })
    .await;
    drop(second);
}
