//! The real database behind notes stops under write load and starts again: a private PostgreSQL or
//! MariaDB (never the shared ones), with notes running as its own process and notes created
//! through the JSON API with a bearer token. While the database is down every write is a 503
//! problem within a second and `/readyz` stays 200 with the failing check reported as `warn`;
//! afterwards notes recovers by itself, and every note it acknowledged with a 201, before or
//! after, is readable.

use platform::testing::{
    Refusal, Server, ServerProcess, ServiceProcess, backend_restart, client_trusting,
};
use serde_json::{Value, json};

use crate::helpers::{Browser, PASSWORD, location, unique_email};

const BINARY: &str = env!("CARGO_BIN_EXE_notes");
const WRITERS: usize = 8;

async fn notes_survive_a_restart_of(server: Server) {
    let Some(mut backend) = ServerProcess::start_new(server).await else {
        return;
    };
    let url = backend.url();
    let settings = [
        ("storage.url", url.as_str()),
        // Bounded storage and health timeouts: every answer during an outage under a second.
        ("storage.connect_timeout", "300ms"),
        ("storage.operation_timeout", "500ms"),
        ("health.check_interval", "100ms"),
        ("health.check_timeout", "300ms"),
    ];
    let service = ServiceProcess::start(BINARY, "notes", &settings);
    let base = format!("http://{}", service.api);
    let client = client_trusting(None);
    let token = api_token(&client, &base).await;

    let write = {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        move |_, n: u64| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            async move {
                let (name, text) = (format!("note {n}"), format!("written under load, {n}"));
                let response = client
                    .post(format!("{base}/api/v1/notes"))
                    .bearer_auth(&token)
                    .json(&json!({ "name": name, "text": text }))
                    .send()
                    .await
                    .expect("notes answers while its database is down");
                if response.status() != 201 {
                    return Err(Refusal::from_response(response).await);
                }
                let note: Value = response.json().await.expect("a 201 has a JSON body");
                let id = note["id"].as_i64().expect("a note id");
                Ok((id, name, text))
            }
        }
    };
    let report = backend_restart(&mut backend, service.admin, WRITERS, write).await;
    eprintln!("notes on {server:?}: {report}");

    for (id, name, text) in &report.acknowledged {
        let response = client
            .get(format!("{base}/api/v1/notes/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("notes answers");
        assert_eq!(response.status(), 200, "acknowledged note {id} was lost");
        let note: Value = response.json().await.expect("a JSON body");
        assert_eq!(note["name"], name.as_str());
        assert_eq!(note["text"], text.as_str());
    }
}

/// Signs a new user up through the pages and returns an API token for them.
async fn api_token(client: &reqwest::Client, base: &str) -> String {
    let email = unique_email();
    let browser = Browser::at(base.to_owned());
    assert_eq!(
        location(&browser.signup(&email, PASSWORD).await),
        "/signin/"
    );
    let response = client
        .post(format!("{base}/api/v1/tokens"))
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("notes answers");
    assert_eq!(response.status(), 201, "a token is issued");
    let body: Value = response.json().await.expect("a JSON body");
    body["token"].as_str().expect("a token").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load() {
    notes_survive_a_restart_of(Server::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restart_under_load() {
    notes_survive_a_restart_of(Server::Mysql).await;
}
