//! The HTML pages, one file per part of Notejam: `accounts.rs` (sign up, sign in, sign out,
//! password reset, settings), `notes.rs` and `pads.rs`. Their handlers extract the visitor and
//! the form, call the domain rules and the repository, and render a template or redirect;
//! `routes.rs` mounts them. This file holds what every page shares: the HTML response with its
//! CSP, the layout around each page, the id in a page's path, the lenient query extractor, and
//! the stylesheet.

pub(crate) mod accounts;
pub(crate) mod notes;
pub(crate) mod pads;

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::domain;
use crate::error::NotesError;
use crate::session::{Flash, Visitor};
use crate::state::AppState;
use crate::templates::{Layout, PadLink};

/// What pages allow themselves: the stylesheet from this origin, forms posting back here, no
/// scripts at all, never framed.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("../static/style.css");

/// `GET /static/style.css`: compiled in, cacheable for an hour.
pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Renders `page` as an HTML response with the pages' own CSP, never cached.
fn html(page: &impl Template) -> Result<Response, NotesError> {
    let body = page.render()?;
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The layout of a page titled `title`, with the sidebar when signed in.
async fn layout(
    state: &AppState,
    visitor: &Visitor,
    title: impl Into<String>,
    current_pad: Option<i64>,
) -> Result<Layout, NotesError> {
    let (user, pads) = match &visitor.session {
        Some(session) => {
            let pads = state.repository.pads(session.user.id).await?;
            let links = pads
                .into_iter()
                .map(|pad| PadLink {
                    current: Some(pad.id) == current_pad,
                    id: pad.id,
                    name: pad.name,
                })
                .collect();
            (Some(session.user.email.clone()), links)
        }
        None => (None, Vec::new()),
    };
    Ok(Layout {
        title: title.into(),
        user,
        pads,
        flash: visitor.flash.map(Flash::text),
        csrf_token: visitor.csrf_token.clone(),
    })
}

/// The id in a page's path ([`domain::parse_id`]); anything else is a page not found.
fn parse_id(raw: &str) -> Result<i64, NotesError> {
    domain::parse_id(raw).ok_or(NotesError::NotFound("no such page"))
}

/// A page's query parameters, lenient as a browser's link deserves: the first value of a
/// repeated parameter is kept and the rest ignored, and a bad value counts as a missing one (its
/// default), so a page never answers `400` for its query string. (The JSON API answers a `400`
/// problem that names the parameter instead.)
pub(crate) struct PageQuery<T>(T);

impl<S, T> FromRequestParts<S> for PageQuery<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Default,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|query| query.0)
            .unwrap_or_default();
        let mut first = serde_json::Map::new();
        for (name, value) in pairs {
            first
                .entry(name)
                .or_insert(serde_json::Value::String(value));
        }
        Ok(PageQuery(
            serde_json::from_value(serde_json::Value::Object(first)).unwrap_or_default(),
        ))
    }
}
