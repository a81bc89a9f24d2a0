//! Three replicas as real processes sharing a log and a broker: a message sent through one
//! reaches the clients of the others, presence spans them, a replica that opens a room knows
//! the others' members before its first join is answered, and a replica that stops sends its
//! clients (1001) to another, where they resume without loss.

use platform::testing::{Backend, ServiceProcess, require};
use serde_json::json;

use crate::helpers::{Client, unique_room};

const BINARY: &str = env!("CARGO_BIN_EXE_chat");

/// `TEST_NATS_URL`, or `None` after saying the suite is skipped (a failure under CI).
#[allow(clippy::disallowed_methods)] // Test infrastructure reads the TEST_* variables by design.
fn nats_url() -> Option<String> {
    let url = std::env::var("TEST_NATS_URL")
        .ok()
        .filter(|url| !url.is_empty());
    require("TEST_NATS_URL for the chat replica suite", url.is_some())
        .then_some(url)
        .flatten()
}

fn start_replicas(storage: &str, broker: &str) -> Vec<ServiceProcess> {
    (0..3)
        .map(|_| start_replica(storage, broker, &[]))
        .collect()
}

fn start_replica(storage: &str, broker: &str, settings: &[(&str, &str)]) -> ServiceProcess {
    let mut all = vec![
        ("storage.url", storage),
        ("broker.url", broker),
        ("chat.rate_burst", "100"),
        ("shutdown.grace", "5s"),
    ];
    all.extend_from_slice(settings);
    ServiceProcess::start(BINARY, "chat", &all)
}

fn ws(replica: &ServiceProcess) -> String {
    format!("ws://{}/ws", replica.api)
}

async fn failover_without_loss(storage: &str, broker: &str) {
    let mut replicas = start_replicas(storage, broker);
    let room = unique_room();
    let mut writer = Client::connect(&ws(&replicas[0])).await;
    writer.join(&room, "writer", None).await;
    let mut reader = Client::connect(&ws(&replicas[1])).await;
    reader.join(&room, "reader", None).await;
    writer.say("first").await;
    let seen = reader.next_of("message").await["seq"].as_u64().unwrap();

    let stopping = tokio::task::spawn_blocking({
        let mut replica = replicas.remove(1);
        move || replica.terminate()
    });
    let (code, _) = reader.closed().await;
    assert_eq!(code, 1001);
    for n in 1..=3 {
        writer.say(&format!("while away {n}")).await;
    }
    // `replicas[1]` is now the third replica.
    let mut reader = Client::connect(&ws(&replicas[1])).await;
    reader.join(&room, "reader", Some(seen)).await;
    writer.say("after").await;
    let frames = reader.messages(4).await;
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (seen + 1..=seen + 4).collect::<Vec<_>>(),
        "{frames:?}"
    );
    assert_eq!(frames[3]["text"], "after");
    assert_eq!(
        stopping.await.unwrap(),
        Some(0),
        "the stopped replica drained and exited 0"
    );
}

#[tokio::test]
async fn through_redis_a_message_reaches_every_replica() {
    let Some(redis) = Backend::Redis.storage_url("chat replicas") else {
        return;
    };
    fan_out(&redis, &redis).await;
}

#[tokio::test]
async fn through_nats_a_message_reaches_every_replica() {
    let (Some(nats), Some(postgres)) = (nats_url(), Backend::Postgres.storage_url("chat replicas"))
    else {
        return;
    };
    fan_out(&postgres, &nats).await;
}

#[tokio::test]
async fn through_redis_a_stopped_replicas_clients_resume_elsewhere() {
    let Some(redis) = Backend::Redis.storage_url("chat replicas") else {
        return;
    };
    failover_without_loss(&redis, &redis).await;
}

#[tokio::test]
async fn through_nats_a_stopped_replicas_clients_resume_elsewhere() {
    let (Some(nats), Some(postgres)) = (nats_url(), Backend::Postgres.storage_url("chat replicas"))
    else {
        return;
    };
    failover_without_loss(&postgres, &nats).await;
}

#[tokio::test]
async fn through_redis_a_replica_new_to_a_room_knows_its_names_before_the_first_join() {
    let Some(redis) = Backend::Redis.storage_url("chat replicas") else {
        return;
    };
    first_join_sees_other_replicas(&redis, &redis).await;
}

#[tokio::test]
async fn through_nats_a_replica_new_to_a_room_knows_its_names_before_the_first_join() {
    let (Some(nats), Some(postgres)) = (nats_url(), Backend::Postgres.storage_url("chat replicas"))
    else {
        return;
    };
    first_join_sees_other_replicas(&postgres, &nats).await;
}

/// "xena" joins on A; the room's first join on B, as "xena", is made unique against A's
/// members without waiting for A's presence to spread.
async fn first_join_sees_other_replicas(storage: &str, broker: &str) {
    let first = start_replica(storage, broker, &[]);
    // A's answer ends B's wait at once; the long bound only keeps a busy machine from
    // turning a late answer into a wrong name.
    let second = start_replica(storage, broker, &[("chat.presence_wait", "20s")]);
    let room = unique_room();
    let mut on_first = Client::connect(&ws(&first)).await;
    assert_eq!(on_first.join(&room, "xena", None).await["name"], "xena");
    let mut on_second = Client::connect(&ws(&second)).await;
    let joined = on_second.join(&room, "xena", None).await;
    assert_eq!(joined["name"], "xena (2)");
    assert_eq!(joined["members"], json!(["xena", "xena (2)"]));
    on_first.wait_for_members(json!(["xena", "xena (2)"])).await;
}

async fn fan_out(storage: &str, broker: &str) {
    let replicas = start_replicas(storage, broker);
    let room = unique_room();
    let mut ada = Client::connect(&ws(&replicas[0])).await;
    ada.join(&room, "ada", None).await;
    let mut bob = Client::connect(&ws(&replicas[1])).await;
    bob.join(&room, "bob", None).await;
    let mut cy = Client::connect(&ws(&replicas[2])).await;
    cy.join(&room, "cy", None).await;

    ada.say("through A").await;
    let seq = ada.next_of("message").await["seq"].as_u64().unwrap();
    for client in [&mut bob, &mut cy] {
        let message = client.next_of("message").await;
        assert_eq!(message["text"], "through A");
        assert_eq!(message["name"], "ada");
        assert_eq!(message["seq"], seq);
    }
    cy.say("through C").await;
    for client in [&mut ada, &mut bob, &mut cy] {
        let message = client.next_of("message").await;
        assert_eq!(message["text"], "through C");
        assert_eq!(message["seq"], seq + 1);
    }
    // Presence spans the replicas.
    cy.wait_for_members(json!(["ada", "bob", "cy"])).await;
    // Names are unique across replicas once presence has spread.
    let mut other = Client::connect(&ws(&replicas[2])).await;
    assert_eq!(other.join(&room, "ada", None).await["name"], "ada (2)");
}
