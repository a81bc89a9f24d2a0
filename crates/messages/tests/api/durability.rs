//! `kill -9` under write load: every POST that was answered 201 is there after a restart, and
//! listed. SQLite, PostgreSQL and MySQL (Redis, as run here, keeps nothing on disk).

use platform::testing::{
    Backend, ServiceProcess, acknowledged_until_killed, client_trusting, temp_path,
};

use crate::helpers::{cursor_from_now, unique_message};

const BINARY: &str = env!("CARGO_BIN_EXE_messages");
const WRITERS: usize = 64;
const ACKNOWLEDGED_BEFORE_KILL: usize = 300;

async fn acknowledged_posts_survive_kill_9(backend: Backend) {
    let Some(url) = backend.storage_url("messages durability") else {
        return;
    };
    let dir = temp_path("tls");
    let dir_setting = dir.to_string_lossy().into_owned();
    let settings = [
        ("storage.url", url.as_str()),
        ("tls.self_signed_dir", dir_setting.as_str()),
    ];
    let since = cursor_from_now();
    let mut server = ServiceProcess::start(BINARY, "messages", &settings);
    let pem = std::fs::read(dir.join("messages.crt")).unwrap();
    let client = client_trusting(Some(&pem));
    let base = format!("https://{}", server.api);

    let writer = client.clone();
    let acknowledged =
        acknowledged_until_killed(&mut server, WRITERS, ACKNOWLEDGED_BEFORE_KILL, move || {
            let (client, base) = (writer.clone(), base.clone());
            async move {
                let message = unique_message();
                let sent = client
                    .post(format!("{base}/messages"))
                    .json(&serde_json::json!({ "message": message }))
                    .send()
                    .await;
                // The process is gone: this POST was never acknowledged.
                let response = sent.ok()?;
                assert_eq!(response.status(), 201, "a POST under load");
                let body = response.json::<serde_json::Value>().await.ok()?;
                let digest = body["digest"].as_str()?.to_owned();
                Some((digest, message))
            }
        })
        .await;

    let server = ServiceProcess::start(BINARY, "messages", &settings);
    let base = format!("https://{}", server.api);
    for (digest, message) in &acknowledged {
        let response = client
            .get(format!("{base}/messages/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "acknowledged {digest} was lost");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["message"], message.as_str());
    }
    let mut listed = std::collections::HashSet::new();
    let mut cursor = since;
    loop {
        let page: serde_json::Value = client
            .get(format!("{base}/messages?limit=1000&cursor={cursor}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        listed.extend(
            page["digestList"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    for (digest, _) in &acknowledged {
        assert!(
            listed.contains(digest),
            "acknowledged {digest} is not listed"
        );
    }
    drop(server);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn sqlite() {
    acknowledged_posts_survive_kill_9(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres() {
    acknowledged_posts_survive_kill_9(Backend::Postgres).await;
}

#[tokio::test]
async fn mysql() {
    acknowledged_posts_survive_kill_9(Backend::Mysql).await;
}
