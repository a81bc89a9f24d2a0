//! Browser sessions, CSRF and flash messages, as one middleware in front of every page.
//!
//! - Session: a random 256-bit token in the cookie `notes_session` (`HttpOnly; SameSite=Lax;
//!   Path=/`, `Secure` when the API serves TLS or `notes.public_url` is `https://`); the database
//!   keeps only its SHA-256. A new token at every sign-in; deleted at sign-out; all of a user's
//!   deleted when the password changes.
//! - CSRF: every form POST must carry `csrf_token`. Signed in, it is the session's own random
//!   token (synchronizer pattern). Anonymous (sign up, sign in, forgot password), it is the
//!   HMAC-SHA256 of the random cookie `notes_csrf` under the server's key (signed double
//!   submit), so a cookie planted by a sibling domain does not yield a valid token.
//! - Flash: a code from a closed set in the cookie `notes_flash`, shown and cleared by the next
//!   page.

use std::collections::HashMap;
use std::net::IpAddr;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::NotesError;
use crate::state::AppState;
use crate::storage::{Session, User};
use crate::users::{new_token, token_hash};

/// The session cookie.
pub const SESSION_COOKIE: &str = "notes_session";
/// The anonymous CSRF cookie.
pub const CSRF_COOKIE: &str = "notes_csrf";
/// The flash message cookie.
pub const FLASH_COOKIE: &str = "notes_flash";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";

/// The messages a page can flash after a redirect, each with Notejam's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flash {
    /// After sign-up.
    SignedUp,
    /// After sign-out.
    SignedOut,
    /// After a password change or reset.
    PasswordChanged,
    /// After a reset link was asked for.
    ResetSent,
    /// Pads.
    PadCreated,
    /// Pads.
    PadUpdated,
    /// Pads.
    PadDeleted,
    /// Notes.
    NoteCreated,
    /// Notes.
    NoteUpdated,
    /// Notes.
    NoteDeleted,
}

impl Flash {
    const ALL: [Flash; 10] = [
        Flash::SignedUp,
        Flash::SignedOut,
        Flash::PasswordChanged,
        Flash::ResetSent,
        Flash::PadCreated,
        Flash::PadUpdated,
        Flash::PadDeleted,
        Flash::NoteCreated,
        Flash::NoteUpdated,
        Flash::NoteDeleted,
    ];

    fn code(self) -> &'static str {
        match self {
            Flash::SignedUp => "signed_up",
            Flash::SignedOut => "signed_out",
            Flash::PasswordChanged => "password_changed",
            Flash::ResetSent => "reset_sent",
            Flash::PadCreated => "pad_created",
            Flash::PadUpdated => "pad_updated",
            Flash::PadDeleted => "pad_deleted",
            Flash::NoteCreated => "note_created",
            Flash::NoteUpdated => "note_updated",
            Flash::NoteDeleted => "note_deleted",
        }
    }

    /// The text shown.
    pub fn text(self) -> &'static str {
        match self {
            Flash::SignedUp => "User is successfully created. Now you can sign in.",
            Flash::SignedOut => "You are signed out.",
            Flash::PasswordChanged => "Password is successfully changed",
            Flash::ResetSent => {
                "If this email is registered, a link to reset the password has been sent to it."
            }
            Flash::PadCreated => "Pad is successfully created",
            Flash::PadUpdated => "Pad is successfully updated",
            Flash::PadDeleted => "Pad is successfully deleted",
            Flash::NoteCreated => "Note is successfully created",
            Flash::NoteUpdated => "Note is successfully updated",
            Flash::NoteDeleted => "Note is successfully deleted",
        }
    }

    fn from_code(code: &str) -> Option<Flash> {
        Flash::ALL.into_iter().find(|flash| flash.code() == code)
    }
}

/// Who is asking, as the middleware found out: put in every page request's extensions.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// The signed-in session, if any.
    pub session: Option<Session>,
    /// The SHA-256 of the session cookie's token, when one was sent (valid or not).
    pub session_hash: Option<String>,
    /// The token this visitor's forms must carry.
    pub csrf_token: String,
    /// The message to show on this page.
    pub flash: Option<Flash>,
    /// The client's address (behind trusted proxies), for rate limits.
    pub client_ip: Option<IpAddr>,
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = NotesError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Visitor, NotesError> {
        parts
            .extensions
            .get::<Visitor>()
            .cloned()
            .ok_or_else(|| NotesError::Internal("the session middleware did not run".to_owned()))
    }
}

/// A signed-in visitor; anonymous ones are redirected to `/signin/?next=<this page>`.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The user.
    pub user: User,
    /// Everything else about the visitor.
    pub visitor: Visitor,
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<SignedIn, Response> {
        let visitor = Visitor::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match &visitor.session {
            Some(session) => Ok(SignedIn {
                user: session.user.clone(),
                visitor,
            }),
            None => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map_or("/", |path_and_query| path_and_query.as_str());
                let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
                Err(Redirect::to(&format!("/signin/?next={next}")).into_response())
            }
        }
    }
}

/// The middleware: finds the session, checks the CSRF token of every POST, hands the flash to
/// the page and clears it once shown.
pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let now = state.clock.now_utc();
    let cookies = cookies(request.headers());
    let client_ip = platform::http::client_ip::client_ip(&request, &state.trusted_proxies);
    let session_hash = cookies.get(SESSION_COOKIE).map(|token| token_hash(token));
    let session = match &session_hash {
        Some(hash) => match state
            .repository
            .session(hash, crate::domain::micros(now))
            .await
        {
            Ok(session) => session,
            Err(error) => return NotesError::from(error).into_response(),
        },
        None => None,
    };
    let (anonymous, new_anonymous) = match cookies.get(CSRF_COOKIE) {
        Some(value) if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) => {
            ((*value).to_owned(), false)
        }
        _ => (new_token(), true),
    };
    let csrf_token = match &session {
        Some(session) => session.csrf_token.clone(),
        None => state.anonymous_csrf_token(&anonymous),
    };
    let flash = cookies
        .get(FLASH_COOKIE)
        .and_then(|code| Flash::from_code(code));
    let stale_session = session_hash.is_some() && session.is_none();

    let (parts, body) = request.into_parts();
    let mut request = if parts.method == Method::POST {
        let bytes = match axum::body::to_bytes(body, state.body_limit).await {
            Ok(bytes) => bytes,
            Err(_) => return NotesError::TooLarge.into_response(),
        };
        let presented = form_urlencoded::parse(&bytes)
            .find(|(key, _)| key == CSRF_FIELD)
            .map(|(_, value)| value.into_owned());
        // A visitor without the cookie has no token that could match.
        let valid = !(session.is_none() && new_anonymous)
            && presented.is_some_and(|presented| {
                bool::from(presented.as_bytes().ct_eq(csrf_token.as_bytes()))
            });
        if !valid {
            return NotesError::Csrf.into_response();
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        Request::from_parts(parts, body)
    };
    request.extensions_mut().insert(Visitor {
        session,
        session_hash,
        csrf_token,
        flash,
        client_ip,
    });

    let mut response = next.run(request).await;
    if new_anonymous {
        append_cookie(&mut response, &state.cookie(CSRF_COOKIE, &anonymous, None));
    }
    if flash.is_some() && !response.status().is_redirection() && !sets(&response, FLASH_COOKIE) {
        append_cookie(&mut response, &state.expired_cookie(FLASH_COOKIE));
    }
    if stale_session && !sets(&response, SESSION_COOKIE) {
        append_cookie(&mut response, &state.expired_cookie(SESSION_COOKIE));
    }
    response
}

/// The request's cookies by name (the first of each name wins).
pub fn cookies(headers: &HeaderMap) -> HashMap<&str, &str> {
    let mut cookies = HashMap::new();
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=') {
                cookies.entry(name.trim()).or_insert(value.trim());
            }
        }
    }
    cookies
}

/// Adds a `Set-Cookie` header (built by [`AppState::cookie`], so always a valid value).
pub fn append_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn sets(response: &Response, name: &str) -> bool {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.starts_with(&format!("{name}=")))
}

/// A redirect (303) that also sets `cookies`.
pub fn redirect(location: &str, cookies: &[String]) -> Response {
    let mut response = Redirect::to(location).into_response();
    for cookie in cookies {
        append_cookie(&mut response, cookie);
    }
    response
}

/// A redirect that flashes `flash` on the next page.
pub fn redirect_flash(state: &AppState, location: &str, flash: Flash) -> Response {
    redirect(location, &[state.flash_cookie(flash)])
}

impl AppState {
    /// `Set-Cookie` for `name=value`: `HttpOnly; SameSite=Lax; Path=/`, `Secure` when the browser
    /// is on HTTPS ([`AppState::secure_cookies`]), and `Max-Age` when given (else a
    /// browser-session cookie).
    pub fn cookie(&self, name: &str, value: &str, max_age_seconds: Option<u64>) -> String {
        let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if let Some(seconds) = max_age_seconds {
            cookie.push_str(&format!("; Max-Age={seconds}"));
        }
        if self.secure_cookies {
            cookie.push_str("; Secure");
        }
        cookie
    }

    /// `Set-Cookie` that shows `flash` on the next page.
    pub fn flash_cookie(&self, flash: Flash) -> String {
        self.cookie(FLASH_COOKIE, flash.code(), Some(60))
    }

    /// `Set-Cookie` that deletes `name`.
    pub fn expired_cookie(&self, name: &str) -> String {
        self.cookie(name, "", Some(0))
    }

    /// The CSRF token of anonymous forms for the cookie value `anonymous`.
    pub fn anonymous_csrf_token(&self, anonymous: &str) -> String {
        // HMAC accepts keys of any length.
        match Hmac::<Sha256>::new_from_slice(&self.csrf_key) {
            Ok(mut mac) => {
                mac.update(b"notes anonymous csrf:");
                mac.update(anonymous.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            }
            Err(_) => new_token(),
        }
    }

    /// Starts a session for `user_id`: stores it and returns the `Set-Cookie` value.
    pub async fn start_session(&self, user_id: i64) -> Result<String, NotesError> {
        let token = new_token();
        let expires = self.clock.now_utc() + self.session_ttl;
        self.repository
            .create_session(
                &token_hash(&token),
                user_id,
                &new_token(),
                crate::domain::micros(expires),
            )
            .await?;
        Ok(self.cookie(SESSION_COOKIE, &token, Some(self.session_ttl.as_secs())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_from_every_header_first_name_wins() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        headers.append(header::COOKIE, HeaderValue::from_static("a=3;c = 4"));
        let cookies = cookies(&headers);
        assert_eq!(cookies.get("a"), Some(&"1"));
        assert_eq!(cookies.get("b"), Some(&"2"));
        assert_eq!(cookies.get("c"), Some(&"4"));
    }

    #[test]
    fn every_flash_code_reads_back() {
        for flash in Flash::ALL {
            assert_eq!(Flash::from_code(flash.code()), Some(flash));
        }
        assert_eq!(Flash::from_code("<script>"), None);
    }
}
