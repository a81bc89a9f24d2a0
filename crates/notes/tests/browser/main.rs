//! notes in a real headless Chromium, driven over the W3C WebDriver protocol by `chromedriver`
//! (Debian's `chromium` and `chromium-driver`): sign up, sign in, a pad and notes, sorting,
//! editing, deleting, signing out, and an XSS payload that must not run.
//!
//! The WebDriver client is the few JSON-over-HTTP calls below, on the test's own reqwest: the
//! protocol is small, and a full client crate would bring a second TLS stack for a plain-HTTP
//! connection to localhost.
//!
//! Skipped (with a note) without Chromium and chromedriver; under CI (`CI` set) that fails.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use platform::testing::{TestApp, require, temp_path};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `chromedriver` on a free port, killed when dropped.
struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        };
        platform::testing::eventually(|| async {
            match driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
            {
                Ok(response) => response
                    .json::<Value>()
                    .await
                    .is_ok_and(|status| status["value"]["ready"] == true),
                Err(_) => false,
            }
        })
        .await;
        driver
    }

    /// A new headless browser with a fresh profile.
    async fn session(&self) -> Browser<'_> {
        let profile = temp_path("chromium-profile");
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let response: Value = self
            .http
            .post(format!("{}/session", self.base))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {response}"))
            .to_owned();
        Browser { driver: self, id }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver session.
struct Browser<'a> {
    driver: &'a Driver,
    id: String,
}

impl Browser<'_> {
    /// The command's `value`, or its error.
    async fn try_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Value> {
        let url = format!("{}/session/{}{path}", self.driver.base, self.id);
        let mut request = self.driver.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response: Value = request.send().await.unwrap().json().await.unwrap();
        if response["value"]["error"].is_null() {
            Ok(response["value"].clone())
        } else {
            Err(response)
        }
    }

    /// The text of the first element matching `css` now, if there is one (the page may be
    /// changing: for conditions polled with `eventually`).
    async fn text_now(&self, css: &str) -> Option<String> {
        let found = self
            .try_command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .ok()?;
        let element = found[ELEMENT].as_str()?.to_owned();
        let text = self
            .try_command(
                reqwest::Method::GET,
                &format!("/element/{element}/text"),
                None,
            )
            .await
            .ok()?;
        text.as_str().map(str::to_owned)
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.driver.base, self.id);
        let mut request = self.driver.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response: Value = request.send().await.unwrap().json().await.unwrap();
        assert!(
            response["value"]["error"].is_null(),
            "WebDriver {path}: {response}"
        );
        response["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn url(&self) -> String {
        let url = self.command(reqwest::Method::GET, "/url", None).await;
        url.as_str().unwrap().to_owned()
    }

    async fn title(&self) -> String {
        let title = self.command(reqwest::Method::GET, "/title", None).await;
        title.as_str().unwrap().to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    async fn find_all_texts(&self, css: &str) -> Vec<String> {
        let found = self
            .command(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        let mut texts = Vec::new();
        for element in found.as_array().unwrap() {
            let id = element[ELEMENT].as_str().unwrap();
            texts.push(self.element_text(id).await);
        }
        texts
    }

    async fn element_text(&self, element: &str) -> String {
        let text = self
            .command(
                reqwest::Method::GET,
                &format!("/element/{element}/text"),
                None,
            )
            .await;
        text.as_str().unwrap().to_owned()
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.element_text(&element).await
    }

    async fn fill(&self, css: &str, value: &str) {
        let element = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": value})),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Waits until the page's URL path (and query) is `path`.
    async fn arrives_at(&self, base: &str, path: &str) {
        let expected = format!("{base}{path}");
        platform::testing::eventually(|| async { self.url().await == expected }).await;
    }

    async fn quit(self) {
        let url = format!("{}/session/{}", self.driver.base, self.id);
        let _ = self.driver.http.delete(url).send().await;
    }
}

#[tokio::test]
async fn a_user_keeps_notes_in_a_real_browser_and_scripts_never_run() {
    let available =
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !require(
        "chromium and chromedriver (apt-get install chromium chromium-driver)",
        available,
    ) {
        return;
    }
    let database = temp_path("db");
    let storage = format!("sqlite://{}", database.display());
    let app = TestApp::spawn(&notes::service(), &[("storage.url", storage.as_str())]).await;
    let base = app.address.clone();
    let driver = Driver::start().await;
    let browser = driver.session().await;
    let email = format!("browser-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = "a long enough password";

    // Sign up.
    browser.goto(&format!("{base}/signup/")).await;
    assert_eq!(browser.text("h1").await, "Sign up");
    browser.fill("#email", &email).await;
    browser.fill("#password", password).await;
    browser.fill("#confirm_password", password).await;
    browser.click("form.card button[type=submit]").await;
    browser.arrives_at(&base, "/signin/").await;
    assert_eq!(
        browser.text(".flash").await,
        "User is successfully created. Now you can sign in."
    );

    // Sign in.
    browser.fill("#email", &email).await;
    browser.fill("#password", password).await;
    browser.click("form.card button[type=submit]").await;
    browser.arrives_at(&base, "/").await;
    assert_eq!(browser.text("h1").await, "All notes (0)");
    assert_eq!(browser.title().await, "All notes · Notes");

    // A pad, then notes in it.
    browser.click(".sidebar a.button").await;
    browser.arrives_at(&base, "/pads/create/").await;
    browser.fill("#name", "Browser pad").await;
    browser.click("form.card button[type=submit]").await;
    platform::testing::eventually(|| async {
        browser.url().await.contains("/pads/") && !browser.url().await.ends_with("/create/")
    })
    .await;
    assert_eq!(browser.text(".flash").await, "Pad is successfully created");
    assert_eq!(browser.text("h1").await, "Browser pad (0)");
    let pad_url = browser.url().await;
    for (name, text) in [
        ("bravo", "second"),
        ("alpha", "first"),
        ("charlie", "third"),
    ] {
        browser.goto(&pad_url).await;
        browser.click(".actions a.button").await;
        browser.fill("#name", name).await;
        browser.fill("#text", text).await;
        browser.click("form.card button[type=submit]").await;
        platform::testing::eventually(|| async {
            browser.text_now("h1").await.as_deref() == Some(name)
        })
        .await;
    }
    browser.goto(&pad_url).await;
    assert_eq!(browser.text("h1").await, "Browser pad (3)");

    // Sort by the column links.
    browser
        .click(r#"a[aria-label="Sort by name, A to Z"]"#)
        .await;
    platform::testing::eventually(|| async { browser.url().await.ends_with("?order=name") }).await;
    assert_eq!(
        browser.find_all_texts("a.note-link").await,
        ["alpha", "bravo", "charlie"]
    );
    browser
        .click(r#"a[aria-label="Sort by name, Z to A"]"#)
        .await;
    platform::testing::eventually(|| async { browser.url().await.ends_with("?order=-name") }).await;
    assert_eq!(
        browser.find_all_texts("a.note-link").await,
        ["charlie", "bravo", "alpha"]
    );

    // Edit one.
    browser.goto(&format!("{base}/")).await;
    browser.click("a.note-link").await;
    platform::testing::eventually(|| async { browser.url().await.contains("/notes/") }).await;
    browser.click(r#".actions a[href$="/edit/"]"#).await;
    browser.fill("#name", "charlie edited").await;
    browser.click("form.card button[type=submit]").await;
    platform::testing::eventually(|| async {
        browser.text_now("h1").await.as_deref() == Some("charlie edited")
    })
    .await;
    assert_eq!(browser.text(".flash").await, "Note is successfully updated");

    // An XSS payload is shown as text and never runs.
    let script = "<script>document.title='pwned'</script>";
    let image = r#"<img src=x onerror="document.title='pwned'">"#;
    browser.goto(&format!("{base}/notes/create/")).await;
    browser.fill("#name", script).await;
    browser.fill("#text", image).await;
    browser.click("form.card button[type=submit]").await;
    platform::testing::eventually(|| async {
        browser.text_now("h1").await.as_deref() == Some(script)
    })
    .await;
    assert_eq!(browser.text(".note .text").await, image);
    assert_eq!(browser.title().await, format!("{script} · Notes"));
    browser.goto(&format!("{base}/")).await;
    assert!(
        browser
            .find_all_texts("a.note-link")
            .await
            .contains(&script.to_owned())
    );
    assert_eq!(browser.title().await, "All notes · Notes");

    // Delete it, through the confirmation page.
    browser.click("a.note-link").await;
    platform::testing::eventually(|| async { browser.url().await.contains("/notes/") }).await;
    browser.click("a.button.danger").await;
    platform::testing::eventually(|| async { browser.url().await.ends_with("/delete/") }).await;
    assert_eq!(browser.text("h1").await, "Delete note");
    browser.click("form.card button.danger").await;
    browser.arrives_at(&base, "/").await;
    assert_eq!(browser.text(".flash").await, "Note is successfully deleted");
    assert_eq!(browser.text("h1").await, "All notes (3)");
    assert_ne!(browser.title().await, "pwned");

    // Sign out.
    browser.click("button.link").await;
    browser.arrives_at(&base, "/signin/").await;
    browser.goto(&format!("{base}/")).await;
    browser.arrives_at(&base, "/signin/?next=%2F").await;

    browser.quit().await;
    drop(driver);
    let _ = std::fs::remove_file(database);
    tokio::time::timeout(Duration::from_secs(10), app.shutdown())
        .await
        .unwrap();
}
