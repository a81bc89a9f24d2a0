//! The platform stack as hello serves it: problems, request ids, health, metrics, OpenAPI.

use platform::testing::assert_problem;
use serde_json::Value;
use time::macros::date;

use crate::helpers::{spawn_with, unique_username};

#[tokio::test]
async fn unknown_routes_are_404_problems_with_the_request_id() {
    let app = spawn_with("memory:", date!(2024 - 06 - 15), &[]).await;
    let response = app
        .app
        .client
        .get(app.app.url("/nowhere"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let problem = assert_problem(response, 404).await;
    assert_eq!(problem["request_id"], "abc-123");
    assert!(problem["detail"].as_str().unwrap().contains("/nowhere"));
}

#[tokio::test]
async fn request_ids_are_generated_when_absent() {
    let app = spawn_with("memory:", date!(2024 - 06 - 15), &[]).await;
    let first = app.get_birthday("nobody").await;
    let second = app.get_birthday("nobody").await;
    let id = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id(&first).len(), 36, "a UUID");
    assert_ne!(id(&first), id(&second));
}

#[tokio::test]
async fn wrong_methods_are_405_problems_with_allow() {
    let app = spawn_with("memory:", date!(2024 - 06 - 15), &[]).await;
    let response = app
        .app
        .client
        .delete(app.app.url("/hello/alice"))
        .send()
        .await
        .unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("PUT"), "{allow}");
    let problem = assert_problem(response, 405).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("DELETE"),
        "{problem}"
    );
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let app = spawn_with("memory:", date!(2024 - 06 - 15), &[]).await;
    let response = app.get_birthday("nobody").await;
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    assert!(response.headers().contains_key("content-security-policy"));
}

#[tokio::test]
async fn liveness_and_readiness_on_both_ports() {
    let app = spawn_with("memory:", date!(2024 - 06 - 15), &[]).await;
    for url in [app.app.url("/livez"), app.app.admin_url("/livez")] {
        let response = app.app.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "application/health+json"
        );
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            serde_json::json!({"status": "pass"})
        );
    }
    let public: Value = app.app.get("/readyz").await.json().await.unwrap();
    assert_eq!(
        public,
        serde_json::json!({"status": "pass"}),
        "no details leak on the API port"
    );
    let admin = app.admin_get("/readyz").await;
    assert_eq!(admin.status(), 200);
    let admin: Value = admin.json().await.unwrap();
    let check = &admin["checks"]["memory:responseTime"][0];
    assert_eq!(check["componentType"], "datastore");
    assert_eq!(check["status"], "pass");
    assert_eq!(check["observedUnit"], "ms");
    assert!(check["time"].as_str().unwrap().contains('T'));
}

#[tokio::test]
async fn info_names_the_service_and_its_backends() {
    let app = spawn_with("memory:", date!(2024 - 06 - 15), &[]).await;
    let info: Value = app.admin_get("/info").await.json().await.unwrap();
    assert_eq!(info["name"], "hello");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert!(info["revision"].is_string());
    assert_eq!(info["backends"], serde_json::json!(["memory"]));
}

#[tokio::test]
async fn metrics_follow_the_design_names_and_labels() {
    let app = spawn_with("memory:", date!(2024 - 06 - 15), &[]).await;
    let user = unique_username();
    assert_eq!(app.put_date(&user, "1990-01-01").await.status(), 204);
    app.greeting(&user).await;
    assert_eq!(app.app.get(&format!("/{user}/nowhere")).await.status(), 404);
    let response = app.admin_get("/metrics").await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    let has = |needle: &str| {
        text.lines()
            .any(|line| line.starts_with(needle) || line.contains(needle))
    };
    assert!(
        has(
            r#"http_server_request_duration_seconds_bucket{http_route="/hello/{username}",http_request_method="PUT",http_response_status_code="204",le="0.1"}"#
        ),
        "{text}"
    );
    assert!(has(
        r#"http_route="/hello/{username}",http_request_method="GET",http_response_status_code="200""#
    ));
    assert!(has(
        r#"http_route="unmatched",http_request_method="GET",http_response_status_code="404""#
    ));
    assert!(!text.contains(&user), "raw paths never become labels");
    assert!(
        has(
            r#"db_client_operation_duration_seconds_bucket{db_system_name="memory",db_operation_name="put",outcome="ok""#
        ),
        "{text}"
    );
    assert!(has("http_server_active_requests"));
    assert!(has(r#"build_info{version="0.1.0""#));
    for process in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(has(process), "{process} missing");
    }
    assert!(
        !text.contains("quantile="),
        "histograms are never rendered as summaries"
    );
}

#[tokio::test]
async fn openapi_document_describes_the_real_routes() {
    let app = spawn_with("memory:", date!(2024 - 06 - 15), &[]).await;
    let document: Value = app.app.get("/openapi.json").await.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let path = &document["paths"]["/hello/{username}"];
    assert_eq!(path["put"]["responses"]["204"]["description"], "Saved");
    assert!(path["get"]["responses"]["200"].is_object());
    assert!(path["get"]["responses"]["404"]["content"]["application/problem+json"].is_object());
    assert!(
        document["components"]["schemas"]["SaveBirthday"]["properties"]["dateOfBirth"].is_object()
    );
}

#[tokio::test]
async fn root_is_an_index_for_probes_and_people() {
    let app = spawn_with("memory:", date!(2024 - 06 - 15), &[]).await;
    let response = app.app.get("/").await;
    assert_eq!(response.status(), 200);
    let index: Value = response.json().await.unwrap();
    assert_eq!(index["service"], "hello");
    assert_eq!(index["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(index["openapi"], "/openapi.json");
}
