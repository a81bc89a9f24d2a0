//! `kill -9` under write load: every note the JSON API answered 201 for is there after a
//! restart, with its text, and so is the API token that wrote it. SQLite, PostgreSQL and MySQL.

use platform::testing::{Backend, ServiceProcess, acknowledged_until_killed};
use serde_json::{Value, json};

use crate::helpers::{Browser, PASSWORD, location, unique_email};

const BINARY: &str = env!("CARGO_BIN_EXE_notes");
const WRITERS: usize = 64;
const ACKNOWLEDGED_BEFORE_KILL: usize = 300;

/// Signs a new user up through the pages and trades the password for an API token.
async fn token(base: &str) -> String {
    let browser = Browser::at(base.to_owned());
    let email = unique_email();
    assert_eq!(
        location(&browser.signup(&email, PASSWORD).await),
        "/signin/"
    );
    let response = browser
        .client
        .post(format!("{base}/api/v1/tokens"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("notes answers");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("a JSON token");
    body["token"].as_str().expect("a token").to_owned()
}

async fn acknowledged_notes_survive_kill_9(backend: Backend) {
    let Some(url) = backend.storage_url("notes durability") else {
        return;
    };
    let settings = [("storage.url", url.as_str())];
    let mut server = ServiceProcess::start(BINARY, "notes", &settings);
    let base = format!("http://{}", server.api);
    let token = token(&base).await;
    let client = reqwest::Client::new();

    let (writer, writer_token) = (client.clone(), token.clone());
    let acknowledged =
        acknowledged_until_killed(&mut server, WRITERS, ACKNOWLEDGED_BEFORE_KILL, move || {
            let (client, base, token) = (writer.clone(), base.clone(), writer_token.clone());
            async move {
                let text = uuid::Uuid::new_v4().to_string();
                let sent = client
                    .post(format!("{base}/api/v1/notes"))
                    .bearer_auth(&token)
                    .json(&json!({"name": "durable", "text": text}))
                    .send()
                    .await;
                // The process is gone: this note was never acknowledged.
                let response = sent.ok()?;
                assert_eq!(response.status(), 201, "a note under load");
                let note: Value = response.json().await.ok()?;
                Some((note["id"].as_i64()?, text))
            }
        })
        .await;

    let server = ServiceProcess::start(BINARY, "notes", &settings);
    for (id, text) in &acknowledged {
        let response = client
            .get(format!("http://{}/api/v1/notes/{id}", server.api))
            .bearer_auth(&token)
            .send()
            .await
            .expect("notes answers after the restart");
        assert_eq!(response.status(), 200, "acknowledged note {id} was lost");
        let note: Value = response.json().await.expect("a JSON note");
        assert_eq!(note["text"], text.as_str(), "note {id}");
    }
}

#[tokio::test]
async fn sqlite() {
    acknowledged_notes_survive_kill_9(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres() {
    acknowledged_notes_survive_kill_9(Backend::Postgres).await;
}

#[tokio::test]
async fn mysql() {
    acknowledged_notes_survive_kill_9(Backend::Mysql).await;
}
