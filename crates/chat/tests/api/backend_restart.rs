//! The real servers behind chat stop under load and start again: a private PostgreSQL (the rooms'
//! history) or a private NATS (the broker between replicas), never the shared ones, with chat
//! running as its own process. While the server is down every message sent is answered within a
//! second by an `unavailable` error frame, the WebSocket stays open and `/readyz` stays 200 with
//! the failing check reported as `warn`; afterwards messages flow again on the same connections
//! with no restart of chat, and every message that was acknowledged (its sender saw it come back
//! numbered) is in the room's history under that number, while none that was refused as "not
//! stored" is (sending it again makes no duplicate).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use platform::testing::{Refusal, Server, ServerProcess, ServiceProcess, backend_restart};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::helpers::{Client, unique_room};

const BINARY: &str = env!("CARGO_BIN_EXE_chat");
const WRITERS: usize = 8;
/// Longest a writer waits for the answer to one message before calling it lost.
const ANSWER_DEADLINE: Duration = Duration::from_secs(5);

/// Stops and starts `which` of the two private servers chat runs on.
async fn messages_survive_a_restart_of(which: Server) {
    let Some(mut postgres) = ServerProcess::start_new(Server::Postgres).await else {
        return;
    };
    let Some(mut nats) = ServerProcess::start_new(Server::Nats).await else {
        return;
    };
    let (storage, broker) = (postgres.url(), nats.url());
    let settings = [
        ("storage.url", storage.as_str()),
        ("broker.url", broker.as_str()),
        // Bounded storage and health timeouts: every answer during an outage under a second.
        ("storage.connect_timeout", "300ms"),
        ("storage.operation_timeout", "500ms"),
        ("health.check_interval", "100ms"),
        ("health.check_timeout", "300ms"),
        // The writers send as fast as they are answered; history keeps every message.
        ("chat.rate_per_second", "10000"),
        ("chat.rate_burst", "10000"),
        ("chat.history", "100000"),
        ("chat.send_queue", "100000"),
    ];
    let service = ServiceProcess::start(BINARY, "chat", &settings);
    let ws = format!("ws://{}/ws", service.api);
    let room = unique_room();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let mut client = Client::connect(&ws).await;
        let joined = client.join(&room, &format!("w{writer}"), None).await;
        let name = joined["name"].as_str().expect("a name").to_owned();
        writers.push(Arc::new(Mutex::new((client, name))));
    }

    let refused: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
    let write = {
        let refused = refused.clone();
        move |writer: usize, n: u64| {
            let (connection, refused) = (writers[writer].clone(), refused.clone());
            async move {
                let mut connection = connection.lock().await;
                let (client, name) = &mut *connection;
                let text = format!("message {n}");
                client.say(&text).await;
                let answer = tokio::time::timeout(ANSWER_DEADLINE, answer(client, name, &text))
                    .await
                    .unwrap_or_else(|_| {
                        Err(Refusal::new(
                            false,
                            format!("no answer to {text:?} within {ANSWER_DEADLINE:?}"),
                        ))
                    });
                if let Err(refusal) = &answer
                    && refusal.answer().contains(chat::hub::ingest::NOT_STORED)
                {
                    refused.lock().unwrap().insert(text);
                }
                answer
            }
        }
    };
    let server = if which == Server::Nats {
        &mut nats
    } else {
        &mut postgres
    };
    let report = backend_restart(server, service.admin, WRITERS, write).await;
    eprintln!("chat with {which:?} stopped: {report}");

    // A new member reads the room from its start: every acknowledged message, same number.
    let mut reader = Client::connect(&ws).await;
    reader.join(&room, "reader", Some(0)).await;
    let last = report
        .acknowledged
        .iter()
        .map(|(seq, _)| *seq)
        .max()
        .expect("messages were acknowledged");
    let mut history = HashMap::new();
    while history.keys().max().is_none_or(|seq| *seq < last) {
        let frame = reader.next_of("message").await;
        let seq = frame["seq"].as_u64().expect("a sequence number");
        history.insert(seq, frame["text"].as_str().expect("a text").to_owned());
    }
    // A refusal that says "not stored" is true: sending again makes no duplicate.
    let refused = refused.lock().unwrap();
    if which == Server::Nats {
        assert!(
            !refused.is_empty(),
            "a broker known to be down refuses before storing"
        );
    }
    for (seq, text) in &history {
        assert!(
            !refused.contains(text),
            "message {seq} ({text:?}) was refused as not stored, yet stored"
        );
    }
    for (seq, text) in &report.acknowledged {
        assert_eq!(
            history.get(seq),
            Some(text),
            "acknowledged message {seq} is in the history"
        );
    }
}

/// Reads frames until the answer to `text`: the message numbered and back from the broker
/// (acknowledged), or an error frame (a refusal; `unavailable` is the one chat promises).
async fn answer(client: &mut Client, name: &str, text: &str) -> Result<(u64, String), Refusal> {
    loop {
        let frame: Value = client.next_frame().await;
        match frame["type"].as_str() {
            Some("message") if frame["name"] == name && frame["text"] == text => {
                let seq = frame["seq"].as_u64().expect("a sequence number");
                return Ok((seq, text.to_owned()));
            }
            Some("error") => {
                return Err(Refusal::new(
                    frame["code"] == "unavailable",
                    frame.to_string(),
                ));
            }
            // Others' messages, presence, and own messages refused earlier but stored.
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load() {
    messages_survive_a_restart_of(Server::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_under_load() {
    messages_survive_a_restart_of(Server::Nats).await;
}
