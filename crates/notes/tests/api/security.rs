//! The security cases: CSRF, cookie attributes, session rotation and invalidation, escaping,
//! open redirects, sign-in rate limits, security headers.

use platform::testing::assert_problem;

use crate::helpers::{
    NotesApp, PASSWORD, location, on_every_backend, set_cookie, spawn_sqlite, unique_email,
};

on_every_backend!(
    signout_invalidates_the_old_cookie,
    password_change_signs_out_every_other_session,
);

#[tokio::test]
async fn a_form_post_without_or_with_a_wrong_csrf_token_is_403() {
    let app = spawn_sqlite(&[]).await;
    let browser = app.browser();
    let email = unique_email();
    // Anonymous forms: no token, a wrong one, and a right one.
    browser.page("/signup/").await;
    let fields = [
        ("email", email.as_str()),
        ("password", PASSWORD),
        ("confirm_password", PASSWORD),
    ];
    assert_problem(browser.post_raw("/signup/", &fields).await, 403).await;
    let mut wrong = fields.to_vec();
    wrong.push(("csrf_token", "0000"));
    assert_problem(browser.post_raw("/signup/", &wrong).await, 403).await;
    // A token from another browser does not fit this one's cookie.
    let other_token = app.browser().csrf().await;
    let mut foreign = fields.to_vec();
    foreign.push(("csrf_token", &other_token));
    assert_problem(browser.post_raw("/signup/", &foreign).await, 403).await;
    assert_eq!(
        location(&browser.signup(&email, PASSWORD).await),
        "/signin/"
    );

    // Signed-in forms: the anonymous token is no longer accepted.
    let anonymous_token = browser.csrf().await;
    browser.signin(&email, PASSWORD).await;
    let response = browser
        .post_raw(
            "/pads/create/",
            &[("name", "x"), ("csrf_token", &anonymous_token)],
        )
        .await;
    assert_problem(response, 403).await;
    assert_problem(browser.post_raw("/signout/", &[]).await, 403).await;
    assert!(
        browser.page("/").await.contains("No pads yet"),
        "nothing was created"
    );
}

#[tokio::test]
async fn the_session_cookie_is_httponly_lax_and_rotated_at_signin() {
    let app = spawn_sqlite(&[]).await;
    let browser = app.browser();
    let email = unique_email();
    browser.signup(&email, PASSWORD).await;
    let first = browser.signin(&email, PASSWORD).await;
    let cookie = set_cookie(&first, "notes_session").unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let first_value = cookie_value(&cookie);
    assert_eq!(first_value.len(), 64);

    // Signing in again in the same browser gives a new session and ends the old one.
    let second = browser.signin(&email, PASSWORD).await;
    let second_value = cookie_value(&set_cookie(&second, "notes_session").unwrap());
    assert_ne!(first_value, second_value);
    assert_eq!(with_session(&app, &first_value, "/").await.status(), 303);
    assert_eq!(with_session(&app, &second_value, "/").await.status(), 200);
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

/// `GET path` with only the session cookie `value`, as a stolen cookie would be replayed.
async fn with_session(app: &NotesApp, value: &str, path: &str) -> reqwest::Response {
    app.app
        .client
        .get(app.app.url(path))
        .header("cookie", format!("notes_session={value}"))
        .send()
        .await
        .unwrap()
}

async fn signout_invalidates_the_old_cookie(app: &NotesApp) {
    let browser = app.browser();
    let email = unique_email();
    browser.signup(&email, PASSWORD).await;
    let value = cookie_value(
        &set_cookie(&browser.signin(&email, PASSWORD).await, "notes_session").unwrap(),
    );
    assert_eq!(with_session(app, &value, "/").await.status(), 200);
    let response = browser.post("/signout/", &[]).await;
    let cleared = set_cookie(&response, "notes_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(
        location(&with_session(app, &value, "/").await),
        "/signin/?next=%2F",
        "the old cookie is dead on the server, not only in the browser"
    );
}

async fn password_change_signs_out_every_other_session(app: &NotesApp) {
    let (laptop, email) = app.signed_in().await;
    let phone = app.browser();
    assert_eq!(location(&phone.signin(&email, PASSWORD).await), "/");
    assert_eq!(phone.get("/").await.status(), 200);
    let response = laptop
        .post(
            "/settings/",
            &[
                ("current_password", PASSWORD),
                ("new_password", "changed password"),
                ("confirm_new_password", "changed password"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/");
    assert_eq!(
        laptop.get("/").await.status(),
        200,
        "this browser stays signed in"
    );
    assert_eq!(
        phone.get("/").await.status(),
        303,
        "the other one is signed out"
    );
}

#[tokio::test]
async fn user_text_is_escaped_and_pages_forbid_scripts() {
    let app = spawn_sqlite(&[]).await;
    let (browser, _) = app.signed_in().await;
    let payload = r#"<script>alert("x")</script><img src=x onerror=alert(1)>"#;
    let pad = browser.create_pad(payload).await;
    let note = browser.create_note(payload, payload, Some(pad)).await;
    for path in [
        "/".to_owned(),
        format!("/notes/{note}/"),
        format!("/pads/{pad}/"),
        format!("/notes/{note}/edit/"),
    ] {
        let response = browser.get(&path).await;
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("script-src"),
            "{csp}"
        );
        let page = response.text().await.unwrap();
        assert!(!page.contains("<script>"), "{path}: {page}");
        assert!(!page.contains("<img src=x"), "{path}");
        assert!(
            page.contains("&lt;script&gt;") || page.contains("&#60;script&#62;"),
            "{path} shows it as text"
        );
    }
}

#[tokio::test]
async fn next_after_signin_must_be_a_local_path() {
    let app = spawn_sqlite(&[]).await;
    let browser = app.browser();
    let email = unique_email();
    browser.signup(&email, PASSWORD).await;
    for (next, expected) in [
        ("/pads/create/", "/pads/create/"),
        ("//evil.com", "/"),
        ("https://evil.com", "/"),
        ("/\\evil.com", "/"),
        ("javascript:alert(1)", "/"),
    ] {
        let response = browser
            .post(
                "/signin/",
                &[("email", &email), ("password", PASSWORD), ("next", next)],
            )
            .await;
        assert_eq!(location(&response), expected, "next={next}");
    }
    // The sign-in page carries `next` from the redirect into its form.
    let page = app
        .browser()
        .page("/signin/?next=%2Fnotes%2Fcreate%2F")
        .await;
    assert!(
        page.contains(r#"name="next" value="/notes/create/""#),
        "{page}"
    );
}

#[tokio::test]
async fn signin_attempts_are_limited_per_account_and_per_client() {
    let app = spawn_sqlite(&[
        ("signin.per_account_burst", "2"),
        ("signin.per_account_per_second", "0.001"),
        ("signin.per_client_burst", "4"),
        ("signin.per_client_per_second", "0.001"),
    ])
    .await;
    let browser = app.browser();
    let email = unique_email();
    browser.signup(&email, PASSWORD).await;
    for _ in 0..2 {
        let page = browser
            .post_page("/signin/", &[("email", &email), ("password", "wrong")])
            .await;
        assert!(page.contains("Wrong email or password"));
    }
    // Even the right password is refused now: the account's bucket is empty.
    let response = browser.signin(&email, PASSWORD).await;
    assert!(response.headers().contains_key("retry-after"));
    let problem = assert_problem(response, 429).await;
    assert_eq!(problem["type"], "urn:problem:rate-limited");

    // Per client: other accounts from the same address run into the client's bucket.
    let other = unique_email();
    browser.signup(&other, PASSWORD).await;
    assert_eq!(browser.signin(&other, "wrong").await.status(), 200);
    assert_problem(browser.signin(&other, PASSWORD).await, 429).await;

    let metrics = app.app.admin_get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"notes_signins_total{outcome="rate_limited"}"#),
        "{metrics}"
    );
    assert!(!metrics.contains(&email), "no email in a label");
}

#[tokio::test]
async fn password_hashing_past_its_memory_budget_answers_503_with_retry_after() {
    // A budget below one hash runs one at a time, and `0s` refuses a second at once.
    let app = spawn_sqlite(&[
        ("signin.hash_memory_budget", "1KiB"),
        ("signin.hash_wait", "0s"),
        ("signin.per_client_burst", "1000"),
        ("signin.per_account_burst", "1000"),
    ])
    .await;
    let attempts = (0..64).map(|_| {
        app.app
            .client
            .post(app.app.url("/api/v1/tokens"))
            .json(&serde_json::json!({"email": unique_email(), "password": PASSWORD}))
            .send()
    });
    let mut shed = 0;
    for response in futures::future::join_all(attempts).await {
        let response = response.unwrap();
        match response.status().as_u16() {
            401 => {}
            503 => {
                assert_eq!(response.headers()["retry-after"], "1");
                let problem = assert_problem(response, 503).await;
                let detail = problem["detail"].as_str().unwrap_or_default();
                assert!(detail.contains("password checks"), "{problem}");
                shed += 1;
            }
            status => panic!("a sign-in answered {status}"),
        }
    }
    // 64 requests that each hash for milliseconds cannot all find the one turn free.
    assert!(shed > 0, "no sign-in was refused past the budget");
    let metrics = app.app.admin_get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(&format!("notes_password_hashes_shed_total {shed}")),
        "{metrics}"
    );
    // The budget sheds load; it does not lock anyone out.
    let response = app
        .app
        .client
        .post(app.app.url("/api/v1/tokens"))
        .json(&serde_json::json!({"email": unique_email(), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_problem(response, 401).await;
}

#[tokio::test]
async fn every_page_works_with_and_without_the_trailing_slash() {
    let app = spawn_sqlite(&[]).await;
    let (browser, _) = app.signed_in().await;
    let pad = browser.create_pad("p").await;
    let note = browser.create_note("n", "t", Some(pad)).await;
    for path in [
        "/signup".to_owned(),
        "/signin".to_owned(),
        "/forgot-password".to_owned(),
        "/settings".to_owned(),
        "/signout".to_owned(),
        "/notes/create".to_owned(),
        format!("/notes/{note}"),
        format!("/notes/{note}/edit"),
        format!("/notes/{note}/delete"),
        "/pads/create".to_owned(),
        format!("/pads/{pad}"),
        format!("/pads/{pad}/edit"),
        format!("/pads/{pad}/delete"),
    ] {
        let with_slash = format!("{path}/");
        for path in [&path, &with_slash] {
            let page = browser.page(path).await;
            assert!(page.contains("<h1>"), "{path} has a heading");
        }
    }
    let css = browser.get("/static/style.css").await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.text().await.unwrap().contains("font-family"));
}

#[tokio::test]
async fn cookies_are_secure_when_served_over_tls() {
    let app = spawn_sqlite(&[("tls.enabled", "true")]).await;
    assert!(app.app.address.starts_with("https://"));
    let response = app.app.get("/signin/").await;
    assert_eq!(response.status(), 200);
    let cookie = set_cookie(&response, "notes_csrf").unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
}

#[tokio::test]
async fn cookies_are_secure_behind_a_tls_terminating_proxy() {
    let app = spawn_sqlite(&[("notes.public_url", "https://notes.example.com")]).await;
    assert!(app.app.address.starts_with("http://"));
    let response = app.app.get("/signin/").await;
    let cookie = set_cookie(&response, "notes_csrf").unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}
