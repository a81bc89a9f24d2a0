//! `spawn_on`, a cookie-keeping `Browser` with one method per page, and the macro that runs a
//! case on every SQL backend.

use platform::testing::{Backend, TestApp};

pub(crate) struct NotesApp {
    pub(crate) app: TestApp,
}

/// notes on `storage_url` with extra `overrides`.
pub(crate) async fn spawn_with(storage_url: &str, overrides: &[(&str, &str)]) -> NotesApp {
    let mut all = vec![("storage.url", storage_url)];
    all.extend_from_slice(overrides);
    NotesApp {
        app: TestApp::spawn(&notes::service(), &all).await,
    }
}

/// notes on `backend`, or `None` when that backend is not configured (the skip is printed).
pub(crate) async fn spawn_on(backend: Backend) -> Option<NotesApp> {
    let url = backend.storage_url("notes HTTP")?;
    Some(spawn_with(&url, &[]).await)
}

/// notes on a fresh SQLite file.
pub(crate) async fn spawn_sqlite(overrides: &[(&str, &str)]) -> NotesApp {
    let url = Backend::Sqlite.storage_url("notes HTTP").unwrap();
    spawn_with(&url, overrides).await
}

/// An email no other test uses, so suites can share one database.
pub(crate) fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

pub(crate) const PASSWORD: &str = "correct horse battery";

/// The value of `name="csrf_token"` in a page.
pub(crate) fn csrf_in(page: &str) -> Option<String> {
    let marker = r#"name="csrf_token" value=""#;
    let start = page.find(marker)? + marker.len();
    let end = page[start..].find('"')?;
    Some(page[start..start + end].to_owned())
}

/// The `Location` of a redirect.
pub(crate) fn location(response: &reqwest::Response) -> String {
    assert!(
        response.status().is_redirection(),
        "expected a redirect, got {} from {}",
        response.status(),
        response.url()
    );
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The id in a `/pads/<id>/` or `/notes/<id>/` location.
pub(crate) fn id_in(location: &str) -> i64 {
    location
        .trim_matches('/')
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no id in {location}"))
}

/// The value the server set for cookie `name` in `response`, if it set one.
pub(crate) fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// A browser: its own cookie jar, no redirects followed.
pub(crate) struct Browser {
    pub(crate) client: reqwest::Client,
    base: String,
}

/// A browser of the notes server at `base` (`http://host:port`).
pub(crate) fn browser_at(base: &str) -> Browser {
    Browser {
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap(),
        base: base.to_owned(),
    }
}

impl NotesApp {
    pub(crate) fn browser(&self) -> Browser {
        browser_at(&self.app.address)
    }

    /// A browser signed in as a new user; returns it and the user's email.
    pub(crate) async fn signed_in(&self) -> (Browser, String) {
        let browser = self.browser();
        let email = unique_email();
        assert_eq!(
            location(&browser.signup(&email, PASSWORD).await),
            "/signin/"
        );
        assert_eq!(location(&browser.signin(&email, PASSWORD).await), "/");
        (browser, email)
    }
}

impl Browser {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// `GET path`, asserting a 200 HTML page; its body.
    pub(crate) async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(content_type, "text/html; charset=utf-8", "GET {path}");
        response.text().await.unwrap()
    }

    /// This browser's CSRF token, as its pages carry it.
    pub(crate) async fn csrf(&self) -> String {
        csrf_in(&self.page("/signin/").await).expect("the page has a CSRF token")
    }

    /// POSTs `fields` as a form, without adding a CSRF token.
    pub(crate) async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// POSTs `fields` as a form with this browser's CSRF token.
    pub(crate) async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf().await;
        let mut all = fields.to_vec();
        all.push(("csrf_token", &token));
        self.post_raw(path, &all).await
    }

    /// POSTs a form that must be shown again with errors; the page.
    pub(crate) async fn post_page(&self, path: &str, fields: &[(&str, &str)]) -> String {
        let response = self.post(path, fields).await;
        assert_eq!(response.status(), 200, "POST {path} shows the form again");
        response.text().await.unwrap()
    }

    pub(crate) async fn signup(&self, email: &str, password: &str) -> reqwest::Response {
        self.post(
            "/signup/",
            &[
                ("email", email),
                ("password", password),
                ("confirm_password", password),
            ],
        )
        .await
    }

    pub(crate) async fn signin(&self, email: &str, password: &str) -> reqwest::Response {
        self.post("/signin/", &[("email", email), ("password", password)])
            .await
    }

    /// Creates a pad, asserting the redirect to it; its id.
    pub(crate) async fn create_pad(&self, name: &str) -> i64 {
        let response = self.post("/pads/create/", &[("name", name)]).await;
        id_in(&location(&response))
    }

    /// Creates a note, asserting the redirect to it; its id.
    pub(crate) async fn create_note(&self, name: &str, text: &str, pad: Option<i64>) -> i64 {
        let pad = pad.map(|id| id.to_string()).unwrap_or_default();
        let response = self
            .post(
                "/notes/create/",
                &[("name", name), ("text", text), ("pad", &pad)],
            )
            .await;
        id_in(&location(&response))
    }
}

/// Runs each named `async fn(&NotesApp)` of the invoking module once per SQL backend, as tests
/// named `<backend>::<case>`.
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let app = crate::helpers::spawn_on(platform::testing::Backend::Sqlite).await;
                    super::$case(&app.unwrap()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    if let Some(app) = crate::helpers::spawn_on(platform::testing::Backend::Postgres).await {
                        super::$case(&app).await;
                    }
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test]
                async fn $case() {
                    if let Some(app) = crate::helpers::spawn_on(platform::testing::Backend::Mysql).await {
                        super::$case(&app).await;
                    }
                }
            )*
        }
    };
}

pub(crate) use on_every_backend;
