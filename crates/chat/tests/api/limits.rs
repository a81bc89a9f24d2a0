//! Limits: message size, frame size, rate, join deadline, heartbeat, slow consumers.

use serde_json::json;

use crate::helpers::{Client, spawn_with, unique_room, ws_url};

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
    let app = spawn_with(&[("chat.rate_burst", "2"), ("chat.rate_per_second", "0.5")]).await;
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
    let url = ws_url(&app.address);
    // A raw TCP client that completes the upgrade and then never reads or answers anything.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            url.as_str(),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "http://localhost".parse().unwrap());
    let addr = app.address.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    use futures::{SinkExt, StreamExt};
    socket
        .send(tokio_tungstenite::tungstenite::Message::text(
            json!({"type": "join", "room": unique_room(), "name": "sleepy"}).to_string(),
        ))
        .await
        .unwrap();
    // Reading is what answers pings in tungstenite; sleep past two heartbeats without reading,
    // so the server sees silence. (The wait is the behaviour under test, not synchronisation.)
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let code = loop {
        match socket.next().await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(close)))) => {
                break u16::from(close.code);
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, 4001);
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
