//! The HTML pages: the lobby (a plain form, works without JavaScript) and a room, whose script
//! and stylesheet the binary serves itself. User input reaches HTML only through [`escape`]
//! here, and through `textContent` in the script.

use axum::extract::Query;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use platform::http::path::Path;
use serde::Deserialize;

use crate::domain::{DisplayName, RoomName};

/// Pages load their script and style from this origin only and talk to nothing else.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const SCRIPT: &str = include_str!("../assets/chat.js");
const STYLE: &str = include_str!("../assets/chat.css");

/// What the lobby form sends.
#[derive(Debug, Deserialize)]
pub struct Enter {
    /// The room to enter.
    #[serde(default)]
    room: String,
    /// The name to be called.
    #[serde(default)]
    name: String,
}

/// `GET /`: pick a name and a room.
pub async fn lobby() -> Response {
    html(StatusCode::OK, &lobby_page("", "", None))
}

/// `GET /rooms?room=…&name=…`: the lobby form's target; redirects to the room, or shows the
/// lobby again with what is wrong.
pub async fn enter(Query(form): Query<Enter>) -> Response {
    let room = RoomName::parse(&form.room);
    let name = DisplayName::parse(&form.name);
    match (room, name) {
        (Ok(room), Ok(name)) => {
            let location = format!(
                "/rooms/{}?name={}",
                room.as_str(),
                url_encode(name.as_str())
            );
            Redirect::to(&location).into_response()
        }
        (room, name) => {
            let problem = room
                .err()
                .or(name.err())
                .map(|error| error.to_string())
                .unwrap_or_default();
            html(
                StatusCode::BAD_REQUEST,
                &lobby_page(&form.room, &form.name, Some(&problem)),
            )
        }
    }
}

/// `GET /rooms/{room}?name=…`: the chat. The name is only a wish: the server decides it at join.
pub async fn room(Path(room): Path<String>, Query(form): Query<Enter>) -> Response {
    let room = match RoomName::parse(&room) {
        Ok(room) => room,
        Err(error) => {
            return html(
                StatusCode::NOT_FOUND,
                &lobby_page("", &form.name, Some(&error.to_string())),
            );
        }
    };
    let Ok(name) = DisplayName::parse(&form.name) else {
        return html(StatusCode::OK, &lobby_page(room.as_str(), "", None));
    };
    let body = format!(
        r#"<main id="room" class="room" data-room="{room}" data-name="{name}">
  <section aria-labelledby="room-title">
    <h2 id="room-title">#{room}</h2>
    <p id="status" role="status">connecting…</p>
    <ul id="log" aria-live="polite" aria-label="Messages"></ul>
    <form id="send" class="send">
      <label for="text" class="visually-hidden">Message</label>
      <input id="text" name="text" autocomplete="off" maxlength="4096" placeholder="Say something" required>
      <button type="submit">Send</button>
    </form>
  </section>
  <aside aria-labelledby="members-title"><h2 id="members-title">In the room</h2><ul id="members"></ul></aside>
</main>
<script src="/static/chat.js"></script>"#,
        room = escape(room.as_str()),
        name = escape(name.as_str()),
    );
    html(
        StatusCode::OK,
        &layout(&format!("#{} — chat", room.as_str()), &body),
    )
}

/// `GET /static/chat.js`.
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /static/chat.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

fn lobby_page(room: &str, name: &str, problem: Option<&str>) -> String {
    let problem = problem
        .map(|problem| format!(r#"<p class="error" role="alert">{}</p>"#, escape(problem)))
        .unwrap_or_default();
    let body = format!(
        r#"<main>
  <form class="lobby" method="get" action="/rooms">
    <h2>Join a room</h2>
    {problem}
    <label for="name">Your name</label>
    <input id="name" name="name" value="{name}" maxlength="32" required autocomplete="nickname">
    <label for="room">Room</label>
    <input id="room" name="room" value="{room}" maxlength="64" required pattern="[A-Za-z0-9_\-]+" placeholder="lobby">
    <button type="submit">Enter</button>
  </form>
</main>"#,
        name = escape(name),
        room = escape(room),
    );
    layout("chat", &body)
}

fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/static/chat.css">
</head>
<body>
<header><h1><a href="/">chat</a></h1></header>
{body}
</body>
</html>
"#,
        title = escape(title),
    )
}

fn html(status: StatusCode, page: &str) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_CSP),
            ),
        ],
        page.to_owned(),
    )
        .into_response()
}

/// Escapes text for HTML content and quoted attribute values.
///
/// ```
/// assert_eq!(chat::pages::escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}
