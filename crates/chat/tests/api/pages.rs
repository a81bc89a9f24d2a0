//! The lobby and room pages: plain forms, escaped text, the script and style served locally.

use crate::helpers::spawn_with;

#[tokio::test]
async fn the_lobby_is_a_form_that_redirects_to_the_room() {
    let app = spawn_with(&[]).await;
    let lobby = app.get("/").await;
    assert_eq!(lobby.status(), 200);
    let csp = lobby.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = lobby.text().await.unwrap();
    assert!(html.contains(r#"<label for="name">"#) && html.contains(r#"action="/rooms""#));

    let entered = app.get("/rooms?room=Lobby&name=Ada%20L").await;
    assert_eq!(entered.status(), 303);
    assert_eq!(entered.headers()["location"], "/rooms/lobby?name=Ada%20L");
    let refused = app.get("/rooms?room=a%2Fb&name=ada").await;
    assert_eq!(refused.status(), 400);
    let body = refused.text().await.unwrap();
    assert!(body.contains("room name"), "{body}");
}

#[tokio::test]
async fn the_room_page_escapes_what_it_echoes_and_uses_local_assets() {
    let app = spawn_with(&[]).await;
    let page = app
        .get("/rooms/lobby?name=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains(r#"<script src="/static/chat.js">"#));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN"
    );
    let script = app.get("/static/chat.js").await.text().await.unwrap();
    assert!(script.contains("textContent") && !script.contains("innerHTML"));
    assert_eq!(app.get("/static/chat.css").await.status(), 200);
    assert_eq!(app.get("/rooms/a.b").await.status(), 404);
}
