//! Notejam's note cases (×11), plus sorting, counts, "Last modified" and the empty state.

use crate::helpers::{NotesApp, csrf_in, location, on_every_backend};

on_every_backend!(
    note_create_succeeds,
    note_create_fails_without_required_fields,
    note_create_by_an_anonymous_user_redirects_to_signin,
    note_create_in_another_users_pad_fails_and_saves_nothing,
    note_edit_succeeds,
    note_edit_fails_without_required_fields,
    note_edit_of_another_users_note_is_not_found,
    note_view_by_its_owner_succeeds,
    note_view_of_another_users_note_is_not_found,
    note_delete_succeeds,
    note_delete_of_another_users_note_is_not_found,
    note_lists_sort_count_and_show_an_empty_state,
);

async fn note_create_succeeds(app: &NotesApp) {
    let (browser, _) = app.signed_in().await;
    let pad = browser.create_pad("Work").await;
    let form = browser.page(&format!("/notes/create/?pad={pad}")).await;
    assert!(
        form.contains(&format!(r#"<option value="{pad}" selected>Work</option>"#)),
        "?pad= preselects the pad: {form}"
    );
    let response = browser
        .post(
            "/notes/create/",
            &[
                ("name", "Plan"),
                ("text", "Ship it"),
                ("pad", &pad.to_string()),
            ],
        )
        .await;
    let note = location(&response);
    let page = browser.page(&note).await;
    assert!(page.contains("Note is successfully created"));
    assert!(page.contains("<h1>Plan</h1>") && page.contains("Ship it"));
    assert!(
        browser
            .page(&format!("/pads/{pad}/"))
            .await
            .contains("Work (1)")
    );
}

async fn note_create_fails_without_required_fields(app: &NotesApp) {
    let (browser, _) = app.signed_in().await;
    let page = browser
        .post_page(
            "/notes/create/",
            &[("name", ""), ("text", " "), ("pad", "")],
        )
        .await;
    assert!(page.contains("Name is required") && page.contains("Text is required"));
    assert!(browser.page("/").await.contains("All notes (0)"));
}

async fn note_create_by_an_anonymous_user_redirects_to_signin(app: &NotesApp) {
    let browser = app.browser();
    assert_eq!(
        location(&browser.get("/notes/create/?pad=1").await),
        "/signin/?next=%2Fnotes%2Fcreate%2F%3Fpad%3D1"
    );
    let response = browser
        .post("/notes/create/", &[("name", "n"), ("text", "t")])
        .await;
    assert!(location(&response).starts_with("/signin/"));
}

async fn note_create_in_another_users_pad_fails_and_saves_nothing(app: &NotesApp) {
    let (owner, _) = app.signed_in().await;
    let (intruder, _) = app.signed_in().await;
    let pad = owner.create_pad("Owner's").await;
    let page = intruder
        .post_page(
            "/notes/create/",
            &[("name", "sneaky"), ("text", "t"), ("pad", &pad.to_string())],
        )
        .await;
    assert!(page.contains("Pad does not exist"), "{page}");
    assert!(intruder.page("/").await.contains("All notes (0)"));
    assert!(owner.page(&format!("/pads/{pad}/")).await.contains("(0)"));
}

async fn note_edit_succeeds(app: &NotesApp) {
    let (browser, _) = app.signed_in().await;
    let pad = browser.create_pad("Moved here").await;
    let id = browser.create_note("Draft", "first", None).await;
    assert!(
        browser
            .page(&format!("/notes/{id}/edit/"))
            .await
            .contains("Draft")
    );
    let response = browser
        .post(
            &format!("/notes/{id}/edit"),
            &[
                ("name", "Final"),
                ("text", "second"),
                ("pad", &pad.to_string()),
            ],
        )
        .await;
    assert_eq!(location(&response), format!("/notes/{id}/"));
    let page = browser.page(&format!("/notes/{id}/")).await;
    assert!(page.contains("Note is successfully updated"));
    assert!(page.contains("Final") && page.contains("second") && page.contains("Moved here"));
}

async fn note_edit_fails_without_required_fields(app: &NotesApp) {
    let (browser, _) = app.signed_in().await;
    let id = browser.create_note("Keep", "me", None).await;
    let page = browser
        .post_page(
            &format!("/notes/{id}/edit/"),
            &[("name", ""), ("text", ""), ("pad", "")],
        )
        .await;
    assert!(page.contains("Name is required") && page.contains("Text is required"));
    assert!(
        browser
            .page(&format!("/notes/{id}/"))
            .await
            .contains("Keep")
    );
}

async fn note_edit_of_another_users_note_is_not_found(app: &NotesApp) {
    let (owner, _) = app.signed_in().await;
    let (intruder, _) = app.signed_in().await;
    let id = owner.create_note("Mine", "text", None).await;
    assert_eq!(
        intruder.get(&format!("/notes/{id}/edit/")).await.status(),
        404
    );
    let response = intruder
        .post(
            &format!("/notes/{id}/edit/"),
            &[("name", "Hijacked"), ("text", "x"), ("pad", "")],
        )
        .await;
    assert_eq!(response.status(), 404);
    assert!(owner.page(&format!("/notes/{id}/")).await.contains("Mine"));
}

async fn note_view_by_its_owner_succeeds(app: &NotesApp) {
    let (browser, _) = app.signed_in().await;
    let id = browser.create_note("Visible", "body text", None).await;
    let page = browser.page(&format!("/notes/{id}")).await;
    assert!(page.contains("Visible") && page.contains("body text"));
    assert!(page.contains("Last modified: Today"));
}

async fn note_view_of_another_users_note_is_not_found(app: &NotesApp) {
    let (owner, _) = app.signed_in().await;
    let (intruder, _) = app.signed_in().await;
    let id = owner.create_note("Secret", "text", None).await;
    let response = intruder.get(&format!("/notes/{id}/")).await;
    assert_eq!(response.status(), 404);
    assert!(!response.text().await.unwrap().contains("Secret"));
}

async fn note_delete_succeeds(app: &NotesApp) {
    let (browser, _) = app.signed_in().await;
    let id = browser.create_note("Bye", "text", None).await;
    let confirm = browser.page(&format!("/notes/{id}/delete/")).await;
    assert!(confirm.contains("Are you sure") && csrf_in(&confirm).is_some());
    assert_eq!(
        browser.get(&format!("/notes/{id}/")).await.status(),
        200,
        "GET only asks"
    );
    let response = browser.post(&format!("/notes/{id}/delete/"), &[]).await;
    assert_eq!(location(&response), "/");
    assert!(
        browser
            .page("/")
            .await
            .contains("Note is successfully deleted")
    );
    assert_eq!(browser.get(&format!("/notes/{id}/")).await.status(), 404);
}

async fn note_delete_of_another_users_note_is_not_found(app: &NotesApp) {
    let (owner, _) = app.signed_in().await;
    let (intruder, _) = app.signed_in().await;
    let id = owner.create_note("Stays", "text", None).await;
    assert_eq!(
        intruder.get(&format!("/notes/{id}/delete/")).await.status(),
        404
    );
    assert_eq!(
        intruder
            .post(&format!("/notes/{id}/delete/"), &[])
            .await
            .status(),
        404
    );
    assert_eq!(owner.get(&format!("/notes/{id}/")).await.status(), 200);
}

/// The positions of `names` in `page`, which must all be there.
fn positions(page: &str, names: &[&str]) -> Vec<usize> {
    names
        .iter()
        .map(|name| {
            page.find(&format!(">{name}</a>"))
                .unwrap_or_else(|| panic!("{name} is listed"))
        })
        .collect()
}

fn in_order(page: &str, names: &[&str]) -> bool {
    positions(page, names)
        .windows(2)
        .all(|pair| pair[0] < pair[1])
}

async fn note_lists_sort_count_and_show_an_empty_state(app: &NotesApp) {
    let (browser, _) = app.signed_in().await;
    let empty = browser.page("/").await;
    assert!(empty.contains("All notes (0)") && empty.contains("No notes yet"));

    let b = browser.create_note("bravo", "text", None).await;
    browser.create_note("alpha", "text", None).await;
    browser.create_note("charlie", "text", None).await;
    // Editing bravo makes it the most recently modified.
    browser
        .post(
            &format!("/notes/{b}/edit/"),
            &[("name", "bravo"), ("text", "edited"), ("pad", "")],
        )
        .await;

    let default = browser.page("/").await;
    assert!(default.contains("All notes (3)"));
    assert!(default.contains("Today"));
    assert!(
        in_order(&default, &["bravo", "charlie", "alpha"]),
        "-updated_at"
    );
    let cases = [
        ("name", ["alpha", "bravo", "charlie"]),
        ("-name", ["charlie", "bravo", "alpha"]),
        ("updated_at", ["alpha", "charlie", "bravo"]),
        ("-updated_at", ["bravo", "charlie", "alpha"]),
        ("nonsense", ["bravo", "charlie", "alpha"]),
    ];
    for (order, expected) in cases {
        let page = browser.page(&format!("/?order={order}")).await;
        assert!(
            in_order(&page, &expected),
            "?order={order} lists {expected:?}"
        );
    }
}
