//! Reconnecting with `last_seq`: everything missed, exactly once, in order.

use crate::helpers::{Client, spawn_with, unique_room, ws_url};

#[tokio::test]
async fn a_client_that_reconnects_gets_what_it_missed_exactly_once_in_order() {
    let app = spawn_with(&[("chat.rate_burst", "100")]).await;
    let url = ws_url(&app.address);
    let room = unique_room();
    let mut writer = Client::connect(&url).await;
    writer.join(&room, "writer", None).await;
    let mut reader = Client::connect(&url).await;
    reader.join(&room, "reader", None).await;
    writer.say("before").await;
    let seen = reader.next_of("message").await["seq"].as_u64().unwrap();
    drop(reader);

    for n in 1..=4 {
        writer.say(&format!("missed {n}")).await;
    }
    writer.messages(5).await;
    let mut reader = Client::connect(&url).await;
    reader.join(&room, "reader", Some(seen)).await;
    writer.say("live").await;
    let frames = reader.messages(5).await;
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (seen + 1..=seen + 5).collect::<Vec<_>>());
    assert_eq!(frames[0]["text"], "missed 1");
    assert_eq!(frames[4]["text"], "live");
}

#[tokio::test]
async fn resuming_past_the_history_says_what_was_lost() {
    let app = spawn_with(&[("chat.history", "2"), ("chat.rate_burst", "100")]).await;
    let url = ws_url(&app.address);
    let room = unique_room();
    let mut writer = Client::connect(&url).await;
    writer.join(&room, "writer", None).await;
    for n in 1..=5 {
        writer.say(&format!("m{n}")).await;
    }
    writer.messages(5).await;
    let mut reader = Client::connect(&url).await;
    reader.join(&room, "reader", Some(1)).await;
    assert_eq!(reader.next_of("error").await["code"], "history_truncated");
    let frames = reader.messages(2).await;
    assert_eq!(frames[0]["seq"], 4);
    assert_eq!(frames[1]["seq"], 5);
}
