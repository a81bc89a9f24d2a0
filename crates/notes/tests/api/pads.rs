//! Notejam's pad cases (×9), plus ids in order and the sidebar.

use crate::helpers::{NotesApp, location, on_every_backend};

on_every_backend!(
    pad_create_succeeds,
    pad_create_fails_without_a_name,
    pad_create_by_an_anonymous_user_redirects_to_signin,
    pad_edit_succeeds,
    pad_edit_fails_without_a_name,
    pad_edit_of_another_users_pad_is_not_found,
    pad_view_of_another_users_pad_is_not_found,
    pad_delete_succeeds_and_deletes_its_notes,
    pad_delete_of_another_users_pad_is_not_found,
    ids_are_assigned_in_order,
);

async fn pad_create_succeeds(app: &NotesApp) {
    let (browser, _) = app.signed_in().await;
    let response = browser
        .post("/pads/create/", &[("name", "Groceries")])
        .await;
    let location = location(&response);
    let page = browser.page(&location).await;
    assert!(page.contains("Pad is successfully created"), "{page}");
    assert!(page.contains("Groceries (0)"), "{page}");
    assert!(
        browser
            .page("/")
            .await
            .contains(&format!(r#"<a href="{location}">Groceries</a>"#))
    );
}

async fn pad_create_fails_without_a_name(app: &NotesApp) {
    let (browser, _) = app.signed_in().await;
    let page = browser.post_page("/pads/create/", &[("name", "  ")]).await;
    assert!(page.contains("Name is required"), "{page}");
    assert!(browser.page("/").await.contains("No pads yet"));
}

async fn pad_create_by_an_anonymous_user_redirects_to_signin(app: &NotesApp) {
    let browser = app.browser();
    assert_eq!(
        location(&browser.get("/pads/create/").await),
        "/signin/?next=%2Fpads%2Fcreate%2F"
    );
    let response = browser.post("/pads/create/", &[("name", "x")]).await;
    assert!(location(&response).starts_with("/signin/?next="));
}

async fn pad_edit_succeeds(app: &NotesApp) {
    let (browser, _) = app.signed_in().await;
    let id = browser.create_pad("Old name").await;
    let response = browser
        .post(&format!("/pads/{id}/edit/"), &[("name", "New name")])
        .await;
    assert_eq!(location(&response), format!("/pads/{id}/"));
    let page = browser.page(&format!("/pads/{id}")).await;
    assert!(page.contains("Pad is successfully updated"));
    assert!(page.contains("New name (0)"));
    assert!(!page.contains("Old name"));
}

async fn pad_edit_fails_without_a_name(app: &NotesApp) {
    let (browser, _) = app.signed_in().await;
    let id = browser.create_pad("Kept").await;
    let page = browser
        .post_page(&format!("/pads/{id}/edit/"), &[("name", "")])
        .await;
    assert!(page.contains("Name is required"));
    assert!(
        browser
            .page(&format!("/pads/{id}/"))
            .await
            .contains("Kept (0)")
    );
}

async fn pad_edit_of_another_users_pad_is_not_found(app: &NotesApp) {
    let (owner, _) = app.signed_in().await;
    let (intruder, _) = app.signed_in().await;
    let id = owner.create_pad("Mine").await;
    assert_eq!(
        intruder.get(&format!("/pads/{id}/edit/")).await.status(),
        404
    );
    let response = intruder
        .post(&format!("/pads/{id}/edit/"), &[("name", "Hijacked")])
        .await;
    assert_eq!(response.status(), 404);
    assert!(
        owner
            .page(&format!("/pads/{id}/"))
            .await
            .contains("Mine (0)")
    );
}

async fn pad_view_of_another_users_pad_is_not_found(app: &NotesApp) {
    let (owner, _) = app.signed_in().await;
    let (intruder, _) = app.signed_in().await;
    let id = owner.create_pad("Private").await;
    owner.create_note("inside", "text", Some(id)).await;
    assert!(owner.page(&format!("/pads/{id}/")).await.contains("inside"));
    let response = intruder.get(&format!("/pads/{id}/")).await;
    assert_eq!(response.status(), 404);
    assert!(!response.text().await.unwrap().contains("Private"));
}

async fn pad_delete_succeeds_and_deletes_its_notes(app: &NotesApp) {
    let (browser, _) = app.signed_in().await;
    let id = browser.create_pad("Doomed").await;
    let note = browser.create_note("goes too", "text", Some(id)).await;
    let kept = browser.create_note("stays", "text", None).await;
    assert!(
        browser
            .page(&format!("/pads/{id}/delete/"))
            .await
            .contains("Doomed")
    );
    let response = browser.post(&format!("/pads/{id}/delete/"), &[]).await;
    assert_eq!(location(&response), "/");
    let page = browser.page("/").await;
    assert!(page.contains("Pad is successfully deleted"));
    assert!(page.contains("All notes (1)"), "{page}");
    assert_eq!(browser.get(&format!("/pads/{id}/")).await.status(), 404);
    assert_eq!(browser.get(&format!("/notes/{note}/")).await.status(), 404);
    assert_eq!(browser.get(&format!("/notes/{kept}/")).await.status(), 200);
}

async fn pad_delete_of_another_users_pad_is_not_found(app: &NotesApp) {
    let (owner, _) = app.signed_in().await;
    let (intruder, _) = app.signed_in().await;
    let id = owner.create_pad("Safe").await;
    assert_eq!(
        intruder.get(&format!("/pads/{id}/delete/")).await.status(),
        404
    );
    assert_eq!(
        intruder
            .post(&format!("/pads/{id}/delete/"), &[])
            .await
            .status(),
        404
    );
    assert_eq!(owner.get(&format!("/pads/{id}/")).await.status(), 200);
}

async fn ids_are_assigned_in_order(app: &NotesApp) {
    let (browser, _) = app.signed_in().await;
    let first = browser.create_pad("one").await;
    let second = browser.create_pad("two").await;
    assert!(first > 0 && second > first, "{first} then {second}");
    let note_one = browser.create_note("a", "a", None).await;
    let note_two = browser.create_note("b", "b", None).await;
    assert!(note_one > 0 && note_two > note_one);
}
