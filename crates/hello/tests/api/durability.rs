//! `kill -9` under write load: every `PUT` answered 204 is there after a restart, with its
//! date. SQLite, PostgreSQL and MySQL (Redis, as run here, keeps nothing on disk).

use hello::domain::{DateOfBirth, Username, greeting};
use platform::testing::{Backend, ServiceProcess, acknowledged_until_killed};
use rand::Rng;
use serde_json::{Value, json};

use crate::helpers::unique_username;

const BINARY: &str = env!("CARGO_BIN_EXE_hello");
const WRITERS: usize = 64;
const ACKNOWLEDGED_BEFORE_KILL: usize = 300;

async fn acknowledged_birthdays_survive_kill_9(backend: Backend) {
    let Some(url) = backend.storage_url("hello durability") else {
        return;
    };
    let settings = [("storage.url", url.as_str())];
    let mut server = ServiceProcess::start(BINARY, "hello", &settings);
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.api);

    let writer = client.clone();
    let acknowledged =
        acknowledged_until_killed(&mut server, WRITERS, ACKNOWLEDGED_BEFORE_KILL, move || {
            let (client, base) = (writer.clone(), base.clone());
            async move {
                let username = unique_username();
                let (year, day) = {
                    let mut rng = rand::rng();
                    (rng.random_range(1950..2010), rng.random_range(1..=28))
                };
                let date = format!("{year}-03-{day:02}");
                let sent = client
                    .put(format!("{base}/hello/{username}"))
                    .json(&json!({ "dateOfBirth": date }))
                    .send()
                    .await;
                // The process is gone: this PUT was never acknowledged.
                let response = sent.ok()?;
                assert_eq!(response.status(), 204, "a PUT under load");
                Some((username, date))
            }
        })
        .await;

    let server = ServiceProcess::start(BINARY, "hello", &settings);
    for (username, date) in &acknowledged {
        // hello greets by its own clock: a read across midnight UTC may count from either day.
        let before = time::OffsetDateTime::now_utc().date();
        let response = client
            .get(format!("http://{}/hello/{username}", server.api))
            .send()
            .await
            .expect("hello answers after the restart");
        let after = time::OffsetDateTime::now_utc().date();
        assert_eq!(response.status(), 200, "acknowledged {username} was lost");
        let body: Value = response.json().await.expect("a JSON greeting");
        let expected = |today| {
            greeting(
                &Username::parse(username).expect("a valid username"),
                DateOfBirth::parse(date, today).expect("a valid date"),
                today,
            )
            .to_string()
        };
        assert!(
            body["message"] == expected(before) || body["message"] == expected(after),
            "{username}'s date changed: {body}"
        );
    }
}

#[tokio::test]
async fn sqlite() {
    acknowledged_birthdays_survive_kill_9(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres() {
    acknowledged_birthdays_survive_kill_9(Backend::Postgres).await;
}

#[tokio::test]
async fn mysql() {
    acknowledged_birthdays_survive_kill_9(Backend::Mysql).await;
}
