//! Bad input is a 4xx, never a 5xx: unknown and malformed ids, oversized forms, unreadable bodies.

use platform::testing::assert_problem;

use crate::helpers::spawn_sqlite;

#[tokio::test]
async fn unknown_and_malformed_ids_are_not_found() {
    let app = spawn_sqlite(&[]).await;
    let (browser, _) = app.signed_in().await;
    for path in [
        "/notes/999999/",
        "/notes/abc/",
        "/notes/-1/",
        "/notes/0/edit/",
        "/notes/99999999999999999999999/",
        "/pads/1e3/",
        "/pads/%20/delete/",
        "/reset-password/nothex/",
        &format!("/reset-password/{}/", "a".repeat(64)),
    ] {
        assert_problem(browser.get(path).await, 404).await;
    }
    let response = browser.post("/notes/abc/delete/", &[]).await;
    assert_problem(response, 404).await;
}

#[tokio::test]
async fn an_oversized_form_is_413() {
    let app = spawn_sqlite(&[("server.body_limit", "16KiB")]).await;
    let (browser, _) = app.signed_in().await;
    let big = "x".repeat(20 * 1024);
    let response = browser
        .post("/notes/create/", &[("name", "big"), ("text", &big)])
        .await;
    assert_problem(response, 413).await;
    assert!(browser.page("/").await.contains("All notes (0)"));
}

#[tokio::test]
async fn a_name_over_100_characters_is_a_form_error() {
    let app = spawn_sqlite(&[]).await;
    let (browser, _) = app.signed_in().await;
    let page = browser
        .post_page("/pads/create/", &[("name", &"n".repeat(101))])
        .await;
    assert!(page.contains("Name is too long"), "{page}");
}

#[tokio::test]
async fn a_body_that_is_not_a_form_is_4xx() {
    let app = spawn_sqlite(&[]).await;
    let (browser, _) = app.signed_in().await;
    let token = browser.csrf().await;
    let response = browser
        .client
        .post(browser.url("/pads/create/"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"name":"x","csrf_token":"{token}"}}"#))
        .send()
        .await
        .unwrap();
    // Without the token in a form body, the CSRF check refuses it first.
    assert_problem(response, 403).await;
    let response = browser
        .client
        .post(browser.url("/pads/create/"))
        .header("content-type", "text/plain")
        .body(format!("csrf_token={token}&name=x"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
}

#[tokio::test]
async fn a_repeated_query_parameter_keeps_its_first_value_on_pages_and_is_named_by_the_api() {
    let app = spawn_sqlite(&[]).await;
    let (browser, _) = app.signed_in().await;
    browser.create_note("bravo", "b", None).await;
    browser.create_note("alpha", "a", None).await;
    // The first `order` wins on a page: by name, alpha before bravo.
    let page = browser.page("/?order=name&order=-name").await;
    let (alpha, bravo) = (page.find("alpha").unwrap(), page.find("bravo").unwrap());
    assert!(alpha < bravo, "{page}");
    // A bad value is the default order, as a missing one, not a 400.
    assert_eq!(browser.get("/?order=sideways&order=").await.status(), 200);

    // The API (here with the session's cookie) names the parameter instead.
    let response = browser.get("/api/v1/notes?order=name&order=-name").await;
    let problem = assert_problem(response, 400).await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("order"),
        "the detail names the parameter: {problem}"
    );
}
