//! The real server behind hello stops under write load and starts again: a private PostgreSQL,
//! MariaDB, Redis or moto as DynamoDB (never the shared ones), with hello running as its own
//! process. While the server is down every write is a 503 problem within a second and `/readyz`
//! stays 200 with the failing check reported as `warn`; afterwards hello recovers by itself,
//! and every write it acknowledged, before or after, is readable. moto keeps nothing across a
//! restart, so there only the writes acknowledged after it are read back.

use platform::testing::{Refusal, Server, ServerProcess, backend_restart, client_trusting};
use serde_json::json;

use crate::helpers::unique_username;

const BINARY: &str = env!("CARGO_BIN_EXE_hello");
const WRITERS: usize = 8;

/// Bounded storage and health timeouts, so every answer during an outage takes under a second.
pub(crate) const FAST_FAILURE: [(&str, &str); 4] = [
    ("storage.connect_timeout", "300ms"),
    ("storage.operation_timeout", "500ms"),
    ("health.check_interval", "100ms"),
    ("health.check_timeout", "300ms"),
];

async fn writes_survive_a_restart_of(server: Server) {
    let Some(mut backend) = ServerProcess::start_new(server).await else {
        return;
    };
    let url = backend.url();
    let mut settings = vec![("storage.url", url.as_str())];
    settings.extend(FAST_FAILURE);
    let hello = platform::testing::ServiceProcess::start(BINARY, "hello", &settings);
    let base = format!("http://{}", hello.api);
    let client = client_trusting(None);

    let prefix = unique_username();
    let write = {
        let (client, base, prefix) = (client.clone(), base.clone(), prefix.clone());
        move |_, n: u64| {
            let (client, base) = (client.clone(), base.clone());
            // Usernames are letters only.
            let user = format!("{prefix}{}", letters(n));
            async move {
                let response = client
                    .put(format!("{base}/hello/{user}"))
                    .json(&json!({ "dateOfBirth": "1990-06-16" }))
                    .send()
                    .await
                    .expect("hello answers while its backend is down");
                if response.status() == 204 {
                    Ok(user)
                } else {
                    Err(Refusal::from_response(response).await)
                }
            }
        }
    };
    let report = backend_restart(&mut backend, hello.admin, WRITERS, write).await;
    eprintln!("hello on {server:?}: {report}");

    // moto forgets everything when it stops (its table comes back empty): of its writes, only
    // the last one, acknowledged after the restart, can be read back.
    let readable = match server {
        Server::DynamoDb => report.acknowledged.len().saturating_sub(1),
        _ => 0,
    };
    for user in &report.acknowledged[readable..] {
        let response = client
            .get(format!("{base}/hello/{user}"))
            .send()
            .await
            .expect("hello answers");
        assert_eq!(response.status(), 200, "acknowledged {user} was lost");
    }
}

/// `n` in base 26 with the letters a–z.
fn letters(mut n: u64) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + u8::try_from(n % 26).unwrap_or(0));
        n /= 26;
        if n == 0 {
            break;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_load() {
    writes_survive_a_restart_of(Server::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restart_under_load() {
    writes_survive_a_restart_of(Server::Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_under_load() {
    writes_survive_a_restart_of(Server::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_restart_under_load() {
    if platform::testing::Backend::DynamoDb
        .storage_url("hello restart")
        .is_none()
    {
        return;
    }
    writes_survive_a_restart_of(Server::DynamoDb).await;
}
