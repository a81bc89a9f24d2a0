//! The store's behaviour on every backend: digests, idempotent posts, retrieval, the listing.

use platform::testing::assert_problem;
use serde_json::{Value, json};

use crate::helpers::{MessagesApp, cursor_from_now, sha256_hex, unique_message};

macro_rules! on_every_backend {
    ($($backend:ident => $variant:ident),* ; $scenarios:tt) => {
        $( on_every_backend!(@backend $backend $variant $scenarios); )*
    };
    (@backend $backend:ident $variant:ident [$($scenario:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let Some(app) = crate::helpers::spawn_on(platform::testing::Backend::$variant).await else { return };
                    super::$scenario(&app).await;
                    assert!(app.app.shutdown().await, "drains");
                }
            )*
        }
    };
}

on_every_backend!(
    memory => Memory, sqlite => Sqlite, postgres => Postgres, mysql => Mysql, redis => Redis,
    dynamodb => DynamoDb;
    [
        posted_message_is_stored_under_its_sha256,
        posting_again_stores_nothing_twice,
        digests_are_case_insensitive_and_answered_lowercase,
        unknown_digest_is_a_404_problem_with_err_msg,
        listing_is_in_first_insertion_order_and_pages_by_cursor,
        unicode_and_empty_messages_round_trip,
    ]
);

async fn posted_message_is_stored_under_its_sha256(app: &MessagesApp) {
    let message = unique_message();
    let response = app.post(&message).await;
    assert_eq!(response.status(), 201);
    let digest = sha256_hex(&message);
    assert_eq!(
        response.headers()["location"].to_str().unwrap(),
        format!("/messages/{digest}")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "digest": digest }));
    assert_eq!(app.message(&digest).await, message);
}

async fn posting_again_stores_nothing_twice(app: &MessagesApp) {
    let start = cursor_from_now();
    let message = unique_message();
    let first = app.store(&message).await;
    let again = app.store(&message).await;
    assert_eq!(first, again);
    let (listed, _) = app.walk("/messages", &start, 1000).await;
    assert_eq!(
        listed.iter().filter(|d| **d == first).count(),
        1,
        "listed once"
    );
    let metrics = app.app.admin_get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line == "messages_stored_total 1"),
        "one message stored, counted once: {metrics}"
    );
}

async fn digests_are_case_insensitive_and_answered_lowercase(app: &MessagesApp) {
    let message = unique_message();
    let digest = app.store(&message).await;
    assert_eq!(digest, digest.to_ascii_lowercase());
    assert_eq!(app.message(&digest.to_ascii_uppercase()).await, message);
}

async fn unknown_digest_is_a_404_problem_with_err_msg(app: &MessagesApp) {
    let digest = sha256_hex(&unique_message());
    let problem = assert_problem(app.get_message(&digest).await, 404).await;
    assert_eq!(problem["err_msg"], "Message not found");
    assert_eq!(problem["type"], "urn:problem:message-not-found");
}

async fn listing_is_in_first_insertion_order_and_pages_by_cursor(app: &MessagesApp) {
    let start = cursor_from_now();
    let mut posted = Vec::new();
    for _ in 0..7 {
        posted.push(app.store(&unique_message()).await);
    }
    // Re-posting the first one must not move it to the end.
    app.store(&app.message(&posted[0]).await).await;
    for path in ["/messages", "/all-messages"] {
        let (listed, pages) = app.walk(path, &start, 2).await;
        // Other tests may share the database; their messages interleave, ours keep their order.
        let ours: Vec<&String> = listed.iter().filter(|d| posted.contains(d)).collect();
        assert_eq!(ours, posted.iter().collect::<Vec<_>>(), "{path}");
        assert!(
            pages >= 4,
            "{path}: 7 digests, 2 per page, took {pages} pages"
        );
    }
    // Without a cursor the listing starts at the beginning and is a page of at most 100.
    let response = app.app.get("/all-messages").await;
    let page: Value = response.json().await.unwrap();
    assert!(page["digestList"].as_array().unwrap().len() <= 100);
}

async fn unicode_and_empty_messages_round_trip(app: &MessagesApp) {
    for message in [
        format!("{} — ☃ 日本語 🎉 \u{0} \"quotes\" <b>", unique_message()),
        String::new(),
    ] {
        let digest = app.store(&message).await;
        assert_eq!(digest, sha256_hex(&message));
        assert_eq!(app.message(&digest).await, message);
    }
}

#[tokio::test]
async fn the_known_digest_of_foo() {
    // The original task's example.
    let app = crate::helpers::spawn_with("memory:", &[]).await;
    assert_eq!(
        app.store("foo").await,
        "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
    );
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let app = crate::helpers::spawn_with("memory:", &[]).await;
    let response = app.app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let document: Value = response.json().await.unwrap();
    for path in ["/messages", "/messages/{digest}", "/all-messages"] {
        assert!(document["paths"][path].is_object(), "{path} missing");
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn the_documented_cursor_is_exactly_what_the_listing_hands_out_and_accepts() {
    // Found by schemathesis: the document allowed any string as `cursor`, and `cursor=` (which it
    // allowed) was refused with 400.
    let app = crate::helpers::spawn_with("memory:", &[]).await;
    let document: Value = app.app.get("/openapi.json").await.json().await.unwrap();
    for path in ["/messages", "/all-messages"] {
        let parameters = document["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap();
        let cursor = parameters.iter().find(|p| p["name"] == "cursor").unwrap();
        let pattern = regex::Regex::new(cursor["schema"]["pattern"].as_str().unwrap()).unwrap();
        let next = &document["components"]["schemas"]["DigestList"]["properties"]["next"];
        assert_eq!(next["pattern"], cursor["schema"]["pattern"], "{path}");

        app.store(&unique_message()).await;
        app.store(&unique_message()).await;
        let page: Value = app
            .app
            .get(&format!("{path}?limit=1"))
            .await
            .json()
            .await
            .unwrap();
        let handed_out = page["next"].as_str().unwrap();
        assert!(pattern.is_match(handed_out), "{handed_out}");

        let never_handed_out = format!("{}-{}", "9".repeat(20), "f".repeat(64));
        assert!(pattern.is_match(&never_handed_out));
        let response = app
            .app
            .get(&format!("{path}?cursor={never_handed_out}"))
            .await;
        assert_eq!(response.status(), 200, "a well-formed cursor is a position");
        for refused in [
            "",
            "nonsense",
            &handed_out.to_uppercase(),
            &format!("{handed_out}0"),
        ] {
            assert!(!pattern.is_match(refused), "{refused:?}");
            let response = app.app.get(&format!("{path}?cursor={refused}")).await;
            assert_problem(response, 400).await;
        }
    }
}

#[tokio::test]
async fn a_listing_kept_in_its_own_namespace_by_earlier_versions_is_moved_beside_the_records() {
    use platform::config::{SecretUrl, StorageSettings};
    use platform::storage::open_key_value;

    // The layout before one namespace: records in `messages`, the listing in
    // `messages_listing`, written here as those versions wrote them.
    let file = platform::testing::temp_path("db");
    let url = format!("sqlite://{}", file.display());
    let settings = StorageSettings {
        url: SecretUrl::new(&url),
        ..StorageSettings::default()
    };
    let records = open_key_value(&settings, "messages", true).await.unwrap();
    let listing = open_key_value(&settings, messages::LEGACY_LISTING_NAMESPACE, true)
        .await
        .unwrap();
    let old: Vec<String> = (0..3).map(|n| format!("old message {n}")).collect();
    for (n, message) in old.iter().enumerate() {
        let digest = sha256_hex(message);
        let first_seen = 1_000 + n as u64;
        let record = json!({ "first_seen": first_seen, "message": message });
        records
            .put(&digest, &serde_json::to_vec(&record).unwrap())
            .await
            .unwrap();
        listing
            .put(&format!("{first_seen:020}-{digest}"), b"")
            .await
            .unwrap();
    }
    drop((records, listing));

    let app = crate::helpers::spawn_with(&url, &[]).await;
    let new = app.store("new message").await;
    let page: Value = app.app.get("/messages").await.json().await.unwrap();
    let listed: Vec<&str> = page["digestList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|digest| digest.as_str().unwrap())
        .collect();
    let expected: Vec<String> = old.iter().map(|m| sha256_hex(m)).chain([new]).collect();
    assert_eq!(listed, expected);
    assert_eq!(app.message(&sha256_hex(&old[1])).await, old[1]);
    drop(app);
    for suffix in ["", "-wal", "-shm"] {
        let mut path = file.clone().into_os_string();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
}
