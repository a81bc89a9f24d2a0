//! notes' scenarios, on its JSON API with a bearer token: `GET /api/v1/notes` (the user's
//! [`LISTED_NOTES`] notes), `POST /api/v1/notes` of a new note on every request, and (for the
//! soak) `PUT /api/v1/notes/{id}` over the user's notes.
//!
//! Each run has a user of its own, made by [`sign_up`] the way a person would: the sign-up form
//! with its CSRF cookie and token, then `POST /api/v1/tokens` for the token.

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Method;
use hyper::StatusCode;
use hyper::header::{CONTENT_TYPE, COOKIE, HeaderValue, LOCATION, SET_COOKIE};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Account, HttpScenario, RequestSpec, RequestStream};
use crate::http::client::{Endpoint, Reply};

/// Notes the list reads: one page's worth (notes lists 20 per page), the same as the earlier
/// wrk-based notes benchmark, so the figures stay comparable.
pub const LISTED_NOTES: usize = 20;

/// The password of every user loadgen signs up.
pub const PASSWORD: &str = "loadgen benchmark password";

/// The anonymous CSRF cookie of notes' forms.
const CSRF_COOKIE: &str = "notes_csrf";

/// The text of every note: about a short paragraph, the same length each time.
pub const TEXT: &str =
    "Benchmark note written by loadgen. The quick brown fox jumps over the lazy dog, twice over.";

/// Signs up a new user through the HTML form, trades the password for an API token and writes
/// `notes` notes as that user, keeping their ids.
pub async fn sign_up(endpoint: &Endpoint, notes: usize) -> anyhow::Result<Account> {
    let email = format!("loadgen-{:016x}@example.com", rand::rng().random::<u64>());
    let form = endpoint
        .exchange(
            endpoint
                .builder(Method::GET, "/signup/")
                .body(Full::default())?,
        )
        .await?;
    ensure!(
        form.status == StatusCode::OK,
        "GET /signup/ answered {}",
        form.status
    );
    let cookie =
        cookie_pair(&form, CSRF_COOKIE).context("GET /signup/ set no CSRF cookie (notes_csrf)")?;
    let token = csrf_in(&String::from_utf8_lossy(&form.body))
        .context("the sign-up page has no csrf_token field")?;
    let body = form_encode(&[
        ("email", &email),
        ("password", PASSWORD),
        ("confirm_password", PASSWORD),
        ("csrf_token", &token),
    ]);
    let signed_up = endpoint
        .exchange(
            endpoint
                .builder(Method::POST, "/signup/")
                .header(COOKIE, cookie)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from(body)))?,
        )
        .await?;
    let location = signed_up.headers.get(LOCATION).map(HeaderValue::as_bytes);
    if !(signed_up.status == StatusCode::SEE_OTHER && location == Some(b"/signin/".as_slice())) {
        bail!(
            "POST /signup/ answered {} ({}), not a redirect to /signin/",
            signed_up.status,
            excerpt(&signed_up.body)
        );
    }

    let credentials = serde_json::json!({ "email": email, "password": PASSWORD });
    let issued = post_json(endpoint, "/api/v1/tokens", None, &credentials).await?;
    ensure!(
        issued.status == StatusCode::CREATED,
        "POST /api/v1/tokens answered {} ({})",
        issued.status,
        excerpt(&issued.body)
    );
    let issued: serde_json::Value = serde_json::from_slice(&issued.body)?;
    let token = issued["token"]
        .as_str()
        .context("POST /api/v1/tokens answered no token")?;
    let authorization = HeaderValue::from_str(&format!("Bearer {token}"))
        .context("the token is not a valid header value")?;

    let mut note_ids = Vec::with_capacity(notes);
    for idx in 0..notes {
        let note = note_body(&format!("note {idx}"));
        let created = post_json(endpoint, "/api/v1/notes", Some(&authorization), &note).await?;
        ensure!(
            created.status == StatusCode::CREATED,
            "POST /api/v1/notes answered {} ({})",
            created.status,
            excerpt(&created.body)
        );
        let created: serde_json::Value = serde_json::from_slice(&created.body)?;
        note_ids.push(created["id"].as_i64().context("a created note has no id")?);
    }
    Ok(Account {
        authorization: Some(authorization),
        note_ids,
    })
}

async fn post_json(
    endpoint: &Endpoint,
    path: &str,
    authorization: Option<&HeaderValue>,
    body: &serde_json::Value,
) -> anyhow::Result<Reply> {
    let mut builder = endpoint
        .builder(Method::POST, path)
        .header(CONTENT_TYPE, "application/json");
    if let Some(authorization) = authorization {
        builder = builder.header(hyper::header::AUTHORIZATION, authorization.clone());
    }
    endpoint
        .exchange(builder.body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?)
        .await
}

/// The start of a body, for error messages.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

/// `name=value` of the cookie `name` the response sets, ready for a `Cookie` header.
fn cookie_pair(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let pair = value.split(';').next()?.trim();
            let (key, _) = pair.split_once('=')?;
            (key == name).then(|| pair.to_owned())
        })
}

/// The value of the `csrf_token` field in a page.
pub fn csrf_in(page: &str) -> Option<String> {
    let marker = r#"name="csrf_token" value=""#;
    let start = page.find(marker)? + marker.len();
    let end = page[start..].find('"')?;
    Some(page[start..start + end].to_owned())
}

/// `application/x-www-form-urlencoded` of `fields`: unreserved characters as they are, spaces as
/// `+`, every other byte as `%XX`.
pub fn form_encode(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        let mut out = String::with_capacity(text.len());
        for byte in text.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    out.push(char::from(byte));
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{byte:02X}")),
            }
        }
        out
    };
    fields
        .iter()
        .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `{"name": name, "text": TEXT}`.
fn note_body(name: &str) -> serde_json::Value {
    serde_json::json!({ "name": name, "text": TEXT })
}

fn note_request(
    method: Method,
    path: String,
    authorization: &HeaderValue,
    name: &str,
) -> RequestSpec {
    RequestSpec {
        method,
        path,
        json_body: Some(Bytes::from(note_body(name).to_string())),
        authorization: Some(authorization.clone()),
    }
}

/// `GET /api/v1/notes` as one user, who has [`LISTED_NOTES`] notes (written by [`sign_up`]).
pub struct List {
    authorization: HeaderValue,
}

impl List {
    /// Lists the notes of the user `authorization` belongs to.
    pub fn new(authorization: HeaderValue) -> List {
        List { authorization }
    }
}

impl HttpScenario for List {
    fn fixtures(&self) -> Vec<RequestSpec> {
        Vec::new()
    }

    fn stream(&self, _connection_idx: usize) -> Box<dyn RequestStream> {
        Box::new(ListStream {
            spec: RequestSpec {
                method: Method::GET,
                path: "/api/v1/notes".to_owned(),
                json_body: None,
                authorization: Some(self.authorization.clone()),
            },
        })
    }
}

struct ListStream {
    spec: RequestSpec,
}

impl RequestStream for ListStream {
    fn next_request(&mut self) -> RequestSpec {
        self.spec.clone()
    }
}

/// `POST /api/v1/notes` of a new note on every request, as one user.
pub struct Create {
    authorization: HeaderValue,
}

impl Create {
    /// Creates notes as the user `authorization` belongs to.
    pub fn new(authorization: HeaderValue) -> Create {
        Create { authorization }
    }
}

impl HttpScenario for Create {
    fn fixtures(&self) -> Vec<RequestSpec> {
        Vec::new()
    }

    fn stream(&self, connection_idx: usize) -> Box<dyn RequestStream> {
        Box::new(CreateStream {
            authorization: self.authorization.clone(),
            connection_idx,
            seq: 0,
        })
    }
}

struct CreateStream {
    authorization: HeaderValue,
    connection_idx: usize,
    seq: u64,
}

impl RequestStream for CreateStream {
    fn next_request(&mut self) -> RequestSpec {
        let name = format!("note {} {}", self.connection_idx, self.seq);
        self.seq += 1;
        note_request(
            Method::POST,
            "/api/v1/notes".to_owned(),
            &self.authorization,
            &name,
        )
    }
}

/// `PUT /api/v1/notes/{id}` of one of the user's notes, picked uniformly at random, with the
/// same text: an update, so the database does not grow.
pub struct Update {
    authorization: HeaderValue,
    note_ids: Vec<i64>,
}

impl Update {
    /// Updates the notes `note_ids` (at least one) of the user `authorization` belongs to.
    pub fn new(authorization: HeaderValue, note_ids: Vec<i64>) -> Update {
        Update {
            authorization,
            note_ids,
        }
    }
}

impl HttpScenario for Update {
    fn fixtures(&self) -> Vec<RequestSpec> {
        Vec::new()
    }

    fn stream(&self, connection_idx: usize) -> Box<dyn RequestStream> {
        let seed = rand::rng().random::<u64>() ^ connection_idx as u64;
        Box::new(UpdateStream {
            authorization: self.authorization.clone(),
            note_ids: self.note_ids.clone(),
            rng: StdRng::seed_from_u64(seed),
        })
    }
}

struct UpdateStream {
    authorization: HeaderValue,
    note_ids: Vec<i64>,
    rng: StdRng,
}

impl RequestStream for UpdateStream {
    fn next_request(&mut self) -> RequestSpec {
        let idx = self.rng.random_range(0..self.note_ids.len().max(1));
        let id = self.note_ids.get(idx).copied().unwrap_or(1);
        note_request(
            Method::PUT,
            format!("/api/v1/notes/{id}"),
            &self.authorization,
            &format!("note {idx}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn forms_are_url_encoded() {
        assert_eq!(
            form_encode(&[
                ("email", "loadgen-1f@example.com"),
                ("password", "a b&c=d+é"),
            ]),
            "email=loadgen-1f%40example.com&password=a+b%26c%3Dd%2B%C3%A9"
        );
        assert_eq!(form_encode(&[]), "");
    }

    #[test]
    fn the_csrf_token_is_read_from_the_form() {
        let page = r#"<form method="post"><input type="hidden" name="csrf_token" value="ab12"><input name="email"></form>"#;
        assert_eq!(csrf_in(page).as_deref(), Some("ab12"));
        assert_eq!(csrf_in("<form></form>"), None);
    }

    #[test]
    fn the_csrf_cookie_is_found_among_others() {
        let mut headers = hyper::HeaderMap::new();
        for cookie in [
            "notes_flash=x; Path=/",
            "notes_csrf=0123abcd; Path=/; HttpOnly; SameSite=Lax",
        ] {
            headers.append(SET_COOKIE, HeaderValue::from_static(cookie));
        }
        let reply = Reply {
            status: StatusCode::OK,
            headers,
            body: Bytes::new(),
        };
        assert_eq!(
            cookie_pair(&reply, "notes_csrf").as_deref(),
            Some("notes_csrf=0123abcd")
        );
        assert_eq!(cookie_pair(&reply, "notes_session"), None);
    }

    #[test]
    fn requests_carry_the_token_and_what_notes_accepts() {
        let bearer = HeaderValue::from_static("Bearer secret");
        let mut list = List::new(bearer.clone()).stream(0);
        let spec = list.next_request();
        assert_eq!(
            (spec.method, spec.path.as_str()),
            (Method::GET, "/api/v1/notes")
        );
        assert_eq!(spec.authorization.as_ref(), Some(&bearer));

        let mut create = Create::new(bearer.clone()).stream(7);
        let mut names = HashSet::new();
        for _ in 0..100 {
            let spec = create.next_request();
            assert_eq!(
                (spec.method, spec.path.as_str()),
                (Method::POST, "/api/v1/notes")
            );
            assert_eq!(spec.authorization.as_ref(), Some(&bearer));
            let body: serde_json::Value =
                serde_json::from_slice(spec.json_body.as_deref().expect("a body")).expect("JSON");
            let name = body["name"].as_str().expect("a name").to_owned();
            assert!((1..=100).contains(&name.chars().count()), "{name:?}");
            assert!(!body["text"].as_str().expect("a text").trim().is_empty());
            assert!(names.insert(name), "note names repeat");
        }

        let mut update = Update::new(bearer, vec![11, 12, 13]).stream(0);
        let paths: HashSet<String> = (0..100).map(|_| update.next_request().path).collect();
        let expected: HashSet<String> = [11, 12, 13].map(|id| format!("/api/v1/notes/{id}")).into();
        assert_eq!(paths, expected);
    }
}
