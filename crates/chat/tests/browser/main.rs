//! Two real browser sessions (headless Chromium through chromedriver) chat in one room; an
//! HTML and script payload shows as text and runs nothing.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fantoccini::{Client, Locator};
use platform::testing::{Browser, TestApp};

async fn open_room(browser: &mut Browser, app: &TestApp, room: &str, name: &str) -> Client {
    let client = browser.session().await;
    client.goto(&app.url("/")).await.unwrap();
    // Through the lobby form, as a person would.
    client
        .find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    client
        .find(Locator::Id("room"))
        .await
        .unwrap()
        .send_keys(room)
        .await
        .unwrap();
    client
        .find(Locator::Css("form.lobby button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&client, "#status", &format!("connected as {name}")).await;
    client
}

async fn wait_for_text(client: &Client, css: &str, text: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await
            && element.text().await.is_ok_and(|shown| shown.contains(text))
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "`{text}` never appeared in {css}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn send(client: &Client, text: &str) {
    client
        .find(Locator::Id("text"))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
    client
        .find(Locator::Css("form.send button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test]
async fn two_browsers_chat_and_markup_stays_text() {
    let Some(mut browser) = Browser::start().await else {
        return;
    };
    let app = TestApp::spawn(&chat::service(), &[]).await;
    let room = format!("room{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let alice = open_room(&mut browser, &app, &room, "alice").await;
    let bob = open_room(&mut browser, &app, &room, "bob").await;
    wait_for_text(&alice, "#members", "bob").await;

    send(&alice, "hello bob").await;
    wait_for_text(&bob, "#log", "hello bob").await;
    send(&bob, "hi alice").await;
    wait_for_text(&alice, "#log", "hi alice").await;

    let payload = r#"<img src=x onerror="document.title='pwned'"><script>document.title='pwned'</script><b>bold</b>"#;
    send(&alice, payload).await;
    wait_for_text(&bob, "#log", "<script>document.title='pwned'</script>").await;
    for client in [&alice, &bob] {
        let title = client.title().await.unwrap();
        assert_eq!(title, format!("#{room} — chat"), "no script ran");
        let injected = client
            .execute(
                "return document.querySelectorAll('#log img, #log script, #log b').length",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            injected,
            serde_json::json!(0),
            "the payload became no element"
        );
    }
    alice.close().await.unwrap();
    bob.close().await.unwrap();
}
