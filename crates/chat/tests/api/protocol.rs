//! Joining, names, relaying and presence.

use chat::domain::Likeness;
use platform::clock::WallClock;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Client, spawn_with, unique_room, ws_url};

#[tokio::test]
async fn messages_reach_every_member_with_the_servers_name_seq_and_time() {
    let app = spawn_with(&[]).await;
    let url = ws_url(&app.address);
    let room = unique_room();
    let mut ada = Client::connect(&url).await;
    let joined = ada.join(&room, "  Ada  ", None).await;
    assert_eq!(joined["name"], "Ada", "trimmed");
    assert_eq!(joined["room"], room);
    assert_eq!(joined["last_seq"], 0);
    let mut bob = Client::connect(&url).await;
    let joined = bob.join(&room, "bob", None).await;
    assert_eq!(joined["members"], json!(["Ada", "bob"]));

    let before = WallClock::system().unix_millis();
    ada.say("hello").await;
    bob.say("hi ada").await;
    for client in [&mut ada, &mut bob] {
        let frames = client.messages(2).await;
        assert_eq!(frames[0]["seq"], 1);
        assert_eq!(frames[0]["name"], "Ada");
        assert_eq!(frames[0]["text"], "hello");
        assert_eq!(frames[1]["seq"], 2);
        assert_eq!(frames[1]["name"], "bob");
        let ts = frames[0]["ts"].as_u64().unwrap();
        assert!(
            ts >= before && ts <= WallClock::system().unix_millis(),
            "{ts}"
        );
    }
}

#[tokio::test]
async fn messages_are_stamped_with_the_services_clock() {
    let accepted_at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_763_890_000_123);
    let service = chat::service_with_clock(WallClock::fixed(accepted_at));
    let app = platform::testing::TestApp::spawn(&service, &[]).await;
    let mut ada = Client::connect(&ws_url(&app.address)).await;
    ada.join(&unique_room(), "ada", None).await;
    ada.say("hello").await;
    let frames = ada.messages(1).await;
    assert_eq!(frames[0]["ts"], 1_763_890_000_123_u64);
}

#[tokio::test]
async fn a_burst_reaches_every_member_once_and_in_order() {
    // 300 messages as fast as one client can send them, to 30 members: a room this busy hands
    // frames over in paced batches (chat::pacing), which must not lose, double or reorder any.
    let app = spawn_with(&[
        ("chat.rate_per_second", "100000"),
        ("chat.rate_burst", "100000"),
    ])
    .await;
    let url = ws_url(&app.address);
    let room = unique_room();
    let mut members = Vec::new();
    for index in 0..30 {
        let mut member = Client::connect(&url).await;
        member.join(&room, &format!("m{index}"), None).await;
        members.push(member);
    }
    let texts: Vec<String> = (1..=300).map(|n| format!("burst {n}")).collect();
    for text in &texts {
        members[0].say(text).await;
    }
    for (index, member) in members.iter_mut().enumerate() {
        let frames = member.messages(texts.len()).await;
        for (n, (frame, text)) in frames.iter().zip(&texts).enumerate() {
            assert_eq!(frame["seq"], n + 1, "member {index}");
            assert_eq!(frame["text"], text.as_str(), "member {index}");
            assert_eq!(frame["name"], "m0", "member {index}");
        }
    }
}

#[tokio::test]
async fn names_are_validated_and_made_unique_in_the_room() {
    let app = spawn_with(&[]).await;
    let url = ws_url(&app.address);
    let room = unique_room();
    let mut first = Client::connect(&url).await;
    assert_eq!(first.join(&room, "ada", None).await["name"], "ada");
    let mut second = Client::connect(&url).await;
    assert_eq!(second.join(&room, "ada", None).await["name"], "ada (2)");

    let mut bad = Client::connect(&url).await;
    for name in ["", "   ", "\u{0}\u{7}", &"x".repeat(33)] {
        bad.send_json(json!({ "type": "join", "room": &room, "name": name }))
            .await;
        let error = bad.next_of("error").await;
        assert_eq!(error["code"], "invalid_name", "{name:?}");
        assert_eq!(error["limit"], 32);
    }
    // The same connection may still join properly.
    assert_eq!(bad.join(&room, "日本語", None).await["name"], "日本語");
}

#[tokio::test]
async fn names_that_look_alike_are_told_apart_in_the_room() {
    let app = spawn_with(&[]).await;
    let url = ws_url(&app.address);
    let room = unique_room();
    // "Adéle" composed, decomposed, and composed behind a first-strong isolate (U+2066).
    let asked = ["Ad\u{e9}le", "Ade\u{301}le", "\u{2066}Ad\u{e9}le"];
    let mut clients = Vec::new();
    let mut given = Vec::new();
    for name in asked {
        let mut client = Client::connect(&url).await;
        let joined = client.join(&room, name, None).await;
        given.push(joined["name"].as_str().unwrap().to_owned());
        clients.push(client);
    }
    assert_eq!(
        given,
        ["Ad\u{e9}le", "Ad\u{e9}le (2)", "Ad\u{e9}le (3)"],
        "one NFC name, made unique"
    );
    // A Latin `paypal` and one with a Cyrillic `а` look alike.
    let mut latin = Client::connect(&url).await;
    assert_eq!(latin.join(&room, "paypal", None).await["name"], "paypal");
    let mut cyrillic = Client::connect(&url).await;
    let joined = cyrillic.join(&room, "p\u{430}ypal", None).await;
    assert_eq!(joined["name"], "p\u{430}ypal (2)");
    given.extend(["paypal".to_owned(), "p\u{430}ypal (2)".to_owned()]);
    for (index, name) in given.iter().enumerate() {
        for other in &given[index + 1..] {
            assert!(
                !Likeness::of(name).resembles(&Likeness::of(other)),
                "{name:?} looks like {other:?}"
            );
        }
    }
}

#[tokio::test]
async fn no_client_can_speak_as_another() {
    let app = spawn_with(&[]).await;
    let url = ws_url(&app.address);
    let room = unique_room();
    let mut mallory = Client::connect(&url).await;
    mallory.join(&room, "mallory", None).await;
    mallory
        .send_json(json!({ "type": "send", "text": "hi", "name": "admin" }))
        .await;
    assert_eq!(mallory.next_of("error").await["code"], "invalid_frame");
    mallory.say("it's me").await;
    assert_eq!(mallory.next_of("message").await["name"], "mallory");
}

#[tokio::test]
async fn invalid_frames_get_errors_and_the_connection_stays_open() {
    let app = spawn_with(&[]).await;
    let url = ws_url(&app.address);
    let room = unique_room();
    let mut client = Client::connect(&url).await;
    client.say("too early").await;
    assert_eq!(client.next_of("error").await["code"], "not_joined");
    client.send_raw(Message::binary(vec![1, 2, 3])).await;
    assert_eq!(client.next_of("error").await["code"], "invalid_frame");
    for garbage in [
        "not json",
        "{}",
        "[1,2]",
        r#"{"type":"shout"}"#,
        r#"{"type":"send","text":42}"#,
    ] {
        client.send_raw(Message::text(garbage)).await;
        assert_eq!(
            client.next_of("error").await["code"],
            "invalid_frame",
            "{garbage}"
        );
    }
    client
        .send_json(json!({ "type": "join", "room": "../../etc", "name": "x" }))
        .await;
    assert_eq!(client.next_of("error").await["code"], "invalid_room");
    client.join(&room, "finally", None).await;
    client
        .send_json(json!({ "type": "join", "room": &room, "name": "again" }))
        .await;
    assert_eq!(client.next_of("error").await["code"], "already_joined");
    client.say("\u{1}\u{2}").await;
    assert_eq!(client.next_of("error").await["code"], "empty_message");
    client.say("still here").await;
    assert_eq!(client.next_of("message").await["text"], "still here");
}

#[tokio::test]
async fn unicode_survives_and_control_characters_are_removed() {
    let app = spawn_with(&[]).await;
    let url = ws_url(&app.address);
    let mut client = Client::connect(&url).await;
    client.join(&unique_room(), "ünïcødé 🎉", None).await;
    client
        .say("héllo\u{0} wörld 🎉\u{7}\nsecond line <script>alert(1)</script>")
        .await;
    let message = client.next_of("message").await;
    assert_eq!(message["name"], "ünïcødé 🎉");
    assert_eq!(
        message["text"],
        "héllo wörld 🎉\nsecond line <script>alert(1)</script>"
    );
}

#[tokio::test]
async fn presence_follows_joins_and_leaves() {
    let app = spawn_with(&[]).await;
    let url = ws_url(&app.address);
    let room = unique_room();
    let mut ada = Client::connect(&url).await;
    ada.join(&room, "ada", None).await;
    let mut bob = Client::connect(&url).await;
    bob.join(&room, "bob", None).await;
    ada.wait_for_members(json!(["ada", "bob"])).await;
    drop(bob);
    ada.wait_for_members(json!(["ada"])).await;
}

#[tokio::test]
async fn history_is_sent_on_join_in_order() {
    let app = spawn_with(&[("chat.history", "3"), ("chat.rate_burst", "100")]).await;
    let url = ws_url(&app.address);
    let room = unique_room();
    let mut writer = Client::connect(&url).await;
    writer.join(&room, "writer", None).await;
    for n in 1..=5 {
        writer.say(&format!("m{n}")).await;
    }
    writer.messages(5).await;
    let mut late = Client::connect(&url).await;
    let joined = late.join(&room, "late", None).await;
    assert_eq!(joined["last_seq"], 5);
    let history = late.messages(3).await;
    let texts: Vec<&str> = history
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["m3", "m4", "m5"],
        "the last `chat.history` messages"
    );
}

#[tokio::test]
async fn the_server_stopping_closes_sessions_with_1001() {
    let app = spawn_with(&[]).await;
    let url = ws_url(&app.address);
    let mut client = Client::connect(&url).await;
    client.join(&unique_room(), "ada", None).await;
    let stopping = tokio::spawn(app.shutdown());
    let (code, reason) = client.closed().await;
    assert_eq!(code, 1001);
    assert!(reason.contains("resume"), "{reason}");
    assert!(stopping.await.unwrap(), "the drain completes");
}
