//! `testing::ServerProcess`: a private real server keeps its data and its port across a stop
//! and a start, refuses connections while stopped, and leaves no process and no files behind.

use std::time::Duration;

use futures::StreamExt;
use platform::storage::pubsub::open_pubsub;
use platform::storage::{StorageError, open_key_value};
use platform::testing::{Server, ServerProcess};

use crate::settings;

/// Stops and starts `server` around a write, and checks what drop leaves behind.
async fn survives_a_restart_and_cleans_up(server: Server) {
    let Some(mut process) = ServerProcess::start_new(server).await else {
        return;
    };
    let url = process.url();
    let port = process.port();
    let store = open_key_value(&settings(&url), "restart", true)
        .await
        .unwrap_or_else(|error| panic!("{url}: {error}\n{}", process.log_tail()));
    store.put("kept", b"across a restart").await.unwrap();

    process.stop().await;
    assert!(!process.is_running());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "a stopped server refuses connections"
    );
    assert!(matches!(
        store.get("kept").await,
        Err(StorageError::Unavailable(_))
    ));

    process.start().await;
    assert_eq!(process.port(), port, "the same port after a restart");
    platform::testing::eventually(|| async { store.get("kept").await.is_ok() }).await;
    assert_eq!(
        store.get("kept").await.unwrap().as_deref(),
        Some(&b"across a restart"[..]),
        "the data survives the restart"
    );
    assert_drop_cleans_up(process);
}

fn assert_drop_cleans_up(process: ServerProcess) {
    let pid = process.id().expect("the server runs");
    let dir = process.dir().to_owned();
    drop(process);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the server process {pid} is gone after drop"
    );
    assert!(!dir.exists(), "{} is deleted after drop", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_postgres_survives_a_restart() {
    survives_a_restart_and_cleans_up(Server::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_mariadb_survives_a_restart() {
    survives_a_restart_and_cleans_up(Server::Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_redis_survives_a_restart() {
    survives_a_restart_and_cleans_up(Server::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_nats_comes_back_on_the_same_port() {
    let Some(mut process) = ServerProcess::start_new(Server::Nats).await else {
        return;
    };
    let broker = open_pubsub(&process.url(), "restart").await.unwrap();
    let mut subscription = broker.subscribe("room").await.unwrap();
    process.stop().await;
    assert!(broker.publish("room", "lost".into()).await.is_err());
    process.start().await;
    // The client reconnects by itself and subscribes again.
    platform::testing::eventually(|| async { broker.ping().await.is_ok() }).await;
    platform::testing::eventually(|| async {
        broker.publish("room", "after".into()).await.is_ok()
    })
    .await;
    let next = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("a message after the restart");
    assert_eq!(next.as_deref(), Some(&b"after"[..]));
    assert_drop_cleans_up(process);
}
