//! The real server behind messages stops under write load and starts again: a private PostgreSQL,
//! MariaDB or Redis (never the shared ones), with messages running as its own process over TLS.
//! While the server is down every POST is a 503 problem within a second and `/readyz` stays 200
//! with the failing check reported as `warn`; afterwards messages recovers by itself, and every
//! message it acknowledged with a 201, before or after, is retrievable by its digest and listed.

use platform::testing::{
    Refusal, Server, ServerProcess, ServiceProcess, backend_restart, client_trusting, temp_path,
};
use serde_json::{Value, json};

use crate::helpers::{cursor_from_now, sha256_hex, unique_message};

const BINARY: &str = env!("CARGO_BIN_EXE_messages");
const WRITERS: usize = 8;

async fn messages_survive_a_restart_of(server: Server) {
    let Some(mut backend) = ServerProcess::start_new(server).await else {
        return;
    };
    let url = backend.url();
    let tls_dir = temp_path("tls");
    let tls_setting = tls_dir.to_string_lossy().into_owned();
    let settings = [
        ("storage.url", url.as_str()),
        ("tls.self_signed_dir", tls_setting.as_str()),
        // Bounded storage and health timeouts: every answer during an outage under a second.
        ("storage.connect_timeout", "300ms"),
        ("storage.operation_timeout", "500ms"),
        ("health.check_interval", "100ms"),
        ("health.check_timeout", "300ms"),
    ];
    let service = ServiceProcess::start(BINARY, "messages", &settings);
    let pem = std::fs::read(tls_dir.join("messages.crt")).expect("the certificate was written");
    let client = client_trusting(Some(&pem));
    let base = format!("https://{}", service.api);
    let since = cursor_from_now();

    let write = {
        let (client, base) = (client.clone(), base.clone());
        move |_, _| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let message = unique_message();
                let response = client
                    .post(format!("{base}/messages"))
                    .json(&json!({ "message": message }))
                    .send()
                    .await
                    .expect("messages answers while its backend is down");
                if response.status() != 201 {
                    return Err(Refusal::from_response(response).await);
                }
                let body: Value = response.json().await.expect("a 201 has a JSON body");
                let digest = body["digest"].as_str().expect("a digest").to_owned();
                assert_eq!(digest, sha256_hex(&message));
                Ok((digest, message))
            }
        }
    };
    let report = backend_restart(&mut backend, service.admin, WRITERS, write).await;
    eprintln!("messages on {server:?}: {report}");

    for (digest, message) in &report.acknowledged {
        let response = client
            .get(format!("{base}/messages/{digest}"))
            .send()
            .await
            .expect("messages answers");
        assert_eq!(response.status(), 200, "acknowledged {digest} was lost");
        let body: Value = response.json().await.expect("a JSON body");
        assert_eq!(body["message"], message.as_str());
    }
    let mut listed = std::collections::HashSet::new();
    let mut cursor = since;
    loop {
        let page: Value = client
            .get(format!("{base}/messages?limit=1000&cursor={cursor}"))
            .send()
            .await
            .expect("messages answers")
            .json()
            .await
            .expect("a JSON page");
        let digests = page["digestList"].as_array().expect("a digest list");
        listed.extend(digests.iter().filter_map(Value::as_str).map(str::to_owned));
        match page["next"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    for (digest, _) in &report.acknowledged {
        assert!(
            listed.contains(digest),
            "acknowledged {digest} is not listed"
        );
    }
    drop(service);
    let _ = std::fs::remove_dir_all(tls_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load() {
    messages_survive_a_restart_of(Server::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restart_under_load() {
    messages_survive_a_restart_of(Server::Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_under_load() {
    messages_survive_a_restart_of(Server::Redis).await;
}
