//! Notejam's user cases: sign up ×5, sign in ×3, plus settings and sign-out.

use crate::helpers::{Browser, NotesApp, PASSWORD, location, on_every_backend, unique_email};

on_every_backend!(
    signup_succeeds,
    signup_fails_without_required_fields,
    signup_fails_with_an_invalid_email,
    signup_fails_when_the_email_exists,
    an_email_in_another_unicode_form_is_the_same_account,
    signup_fails_when_passwords_do_not_match,
    signin_succeeds,
    signin_fails_without_required_fields,
    signin_fails_with_wrong_credentials,
    password_change_succeeds_and_really_changes_it,
    password_change_fails_with_a_wrong_current_password,
    signout_signs_out,
);

async fn signup_succeeds(app: &NotesApp) {
    let browser = app.browser();
    let response = browser.signup(&unique_email(), PASSWORD).await;
    assert_eq!(location(&response), "/signin/");
    let page = browser.page("/signin/").await;
    assert!(page.contains("User is successfully created. Now you can sign in."));
    // Shown once.
    assert!(
        !browser
            .page("/signin/")
            .await
            .contains("successfully created")
    );
}

async fn signup_fails_without_required_fields(app: &NotesApp) {
    let page = app
        .browser()
        .post_page(
            "/signup/",
            &[("email", ""), ("password", ""), ("confirm_password", "")],
        )
        .await;
    assert!(page.contains("Email is required"), "{page}");
    assert!(page.contains("Password is required"), "{page}");
}

async fn signup_fails_with_an_invalid_email(app: &NotesApp) {
    let page = app
        .browser()
        .post_page(
            "/signup/",
            &[
                ("email", "not an email"),
                ("password", PASSWORD),
                ("confirm_password", PASSWORD),
            ],
        )
        .await;
    assert!(page.contains("Invalid email"), "{page}");
}

async fn signup_fails_when_the_email_exists(app: &NotesApp) {
    let browser = app.browser();
    let email = unique_email();
    assert_eq!(
        location(&browser.signup(&email, PASSWORD).await),
        "/signin/"
    );
    assert_signup_is_refused_as_existing(&browser, &email.to_uppercase()).await;
}

/// Signs up as `email` again and expects Notejam's "already exists" form error.
async fn assert_signup_is_refused_as_existing(browser: &Browser, email: &str) {
    let page = browser
        .post_page(
            "/signup/",
            &[
                ("email", email),
                ("password", PASSWORD),
                ("confirm_password", PASSWORD),
            ],
        )
        .await;
    assert!(
        page.contains("User with given email already exists!"),
        "{page}"
    );
}

async fn an_email_in_another_unicode_form_is_the_same_account(app: &NotesApp) {
    let browser = app.browser();
    let local = unique_email();
    // "éve-…" typed as `e` + U+0301 (NFD) and as U+00E9 (NFC).
    let decomposed = format!("e\u{301}ve-{local}");
    let composed = format!("\u{e9}ve-{local}");
    assert_eq!(
        location(&browser.signup(&decomposed, PASSWORD).await),
        "/signin/"
    );
    assert_signup_is_refused_as_existing(&browser, &composed.to_uppercase()).await;
    assert_eq!(location(&browser.signin(&composed, PASSWORD).await), "/");
}

async fn signup_fails_when_passwords_do_not_match(app: &NotesApp) {
    let page = app
        .browser()
        .post_page(
            "/signup/",
            &[
                ("email", &unique_email()),
                ("password", PASSWORD),
                ("confirm_password", "something else"),
            ],
        )
        .await;
    assert!(page.contains("Passwords do not match"), "{page}");
}

async fn signin_succeeds(app: &NotesApp) {
    let browser = app.browser();
    let email = unique_email();
    browser.signup(&email, PASSWORD).await;
    assert_eq!(location(&browser.signin(&email, PASSWORD).await), "/");
    let page = browser.page("/").await;
    assert!(page.contains(&email));
    assert!(page.contains("My pads"));
}

async fn signin_fails_without_required_fields(app: &NotesApp) {
    let page = app
        .browser()
        .post_page("/signin/", &[("email", ""), ("password", "")])
        .await;
    assert!(page.contains("Email is required"), "{page}");
    assert!(page.contains("Password is required"), "{page}");
}

async fn signin_fails_with_wrong_credentials(app: &NotesApp) {
    let browser = app.browser();
    let email = unique_email();
    browser.signup(&email, PASSWORD).await;
    let wrong_password = browser
        .post_page(
            "/signin/",
            &[("email", &email), ("password", "wrong password")],
        )
        .await;
    let unknown_user = browser
        .post_page(
            "/signin/",
            &[("email", &unique_email()), ("password", PASSWORD)],
        )
        .await;
    for page in [&wrong_password, &unknown_user] {
        assert!(page.contains("Wrong email or password"), "{page}");
    }
    assert_eq!(browser.get("/").await.status(), 303, "still signed out");
}

async fn password_change_succeeds_and_really_changes_it(app: &NotesApp) {
    let (browser, email) = app.signed_in().await;
    let new_password = "a brand new password";
    let response = browser
        .post(
            "/settings/",
            &[
                ("current_password", PASSWORD),
                ("new_password", new_password),
                ("confirm_new_password", new_password),
            ],
        )
        .await;
    assert_eq!(location(&response), "/");
    assert!(
        browser
            .page("/")
            .await
            .contains("Password is successfully changed")
    );

    let other = app.browser();
    let page = other
        .post_page("/signin/", &[("email", &email), ("password", PASSWORD)])
        .await;
    assert!(
        page.contains("Wrong email or password"),
        "the old password no longer works"
    );
    assert_eq!(location(&other.signin(&email, new_password).await), "/");
}

async fn password_change_fails_with_a_wrong_current_password(app: &NotesApp) {
    let (browser, _) = app.signed_in().await;
    let page = browser
        .post_page(
            "/settings/",
            &[
                ("current_password", "not my password"),
                ("new_password", "another password"),
                ("confirm_new_password", "another password!"),
            ],
        )
        .await;
    assert!(page.contains("Current password is not correct"), "{page}");
    assert!(page.contains("Passwords do not match"), "{page}");
}

async fn signout_signs_out(app: &NotesApp) {
    let (browser, _) = app.signed_in().await;
    assert!(browser.page("/signout/").await.contains("Sign out"));
    let response = browser.post("/signout/", &[]).await;
    assert_eq!(location(&response), "/signin/");
    assert_eq!(
        location(&browser.get("/").await),
        "/signin/?next=%2F",
        "signed out"
    );
}
