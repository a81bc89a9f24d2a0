//! RFC 9457 `application/problem+json` errors, the only error body any service writes.
//!
//! Handlers return [`Problem`] (usually through their own error enum's `From` impl). Its
//! `IntoResponse` writes the body and keeps the `Problem` in the response extensions; the
//! observation layer, just inside the request-id layer, then calls [`finalize`], which adds the
//! `request_id` member and turns any other error response that inner layers produced (axum's
//! 405, a 413 from the body limit) into a problem too, so no plain-text error leaves the process.

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of every error body.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem: what went wrong, for the client, with the request id to quote.
///
/// ```
/// use axum::http::StatusCode;
/// use platform::Problem;
/// let problem = Problem::new(StatusCode::NOT_FOUND, "user-not-found", "User not found")
///     .with_detail("No birthday is stored for `alice`.");
/// assert_eq!(problem.status(), StatusCode::NOT_FOUND);
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    kind: Cow<'static, str>,
    title: Cow<'static, str>,
    #[serde(serialize_with = "serialize_status")]
    status: StatusCode,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(flatten)]
    extensions: serde_json::Map<String, serde_json::Value>,
    #[serde(skip)]
    retry_after_seconds: Option<u32>,
}

fn serialize_status<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

impl Problem {
    /// A problem of `status` whose `type` is `urn:problem:<slug>` and whose `title` is `title`.
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: impl Into<Cow<'static, str>>,
    ) -> Problem {
        Problem {
            kind: Cow::Owned(format!("urn:problem:{slug}")),
            title: title.into(),
            status,
            detail: String::new(),
            request_id: None,
            extensions: serde_json::Map::new(),
            retry_after_seconds: None,
        }
    }

    /// A problem with `type` `about:blank` and the status' reason phrase as its title (RFC 9457 §4.2.1).
    pub fn from_status(status: StatusCode) -> Problem {
        Problem {
            kind: Cow::Borrowed("about:blank"),
            title: Cow::Borrowed(status.canonical_reason().unwrap_or("Error")),
            status,
            detail: String::new(),
            request_id: None,
            extensions: serde_json::Map::new(),
            retry_after_seconds: None,
        }
    }

    /// Sets the human-readable explanation of this occurrence.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Problem {
        self.detail = detail.into();
        self
    }

    /// Adds a member beyond the standard ones (e.g. messages' `err_msg`).
    pub fn with_extension(mut self, key: &str, value: impl Into<serde_json::Value>) -> Problem {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    /// Sends `Retry-After: seconds`, for 503 and 429 answers.
    pub fn with_retry_after(mut self, seconds: u32) -> Problem {
        self.retry_after_seconds = Some(seconds);
        self
    }

    /// `404 Not Found`.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::from_status(StatusCode::NOT_FOUND).with_detail(detail)
    }

    /// `503 Service Unavailable` with `Retry-After: 1`: a dependency is down or we are overloaded.
    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::from_status(StatusCode::SERVICE_UNAVAILABLE)
            .with_detail(detail)
            .with_retry_after(1)
    }

    /// `500 Internal Server Error`. The detail stays generic; the cause goes to the log.
    pub fn internal() -> Problem {
        Problem::from_status(StatusCode::INTERNAL_SERVER_ERROR)
            .with_detail("The server failed to handle the request; it has been logged.")
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `type` URI.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The `detail` text.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    fn body(&self) -> Vec<u8> {
        // Serialising a struct of strings and a JSON map cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(self);
        response
    }
}

/// Gives an error response a problem body carrying `request_id`; other responses pass as they
/// are. Called once per request by the observation layer, outside every layer that can answer.
///
/// Headers such as `Allow`, `Retry-After` and `WWW-Authenticate` on the response are kept; a
/// response without a `Problem` (axum's 405, a 413 from the body limit) gets one for its status,
/// except an HTML page a service rendered for a browser (`text/html`), which is kept as it is.
pub(crate) fn finalize(
    response: Response,
    request_id: Option<&str>,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // A service's own error page (HTML for a browser) is already meant for its reader.
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if is_page && response.extensions().get::<Problem>().is_none() {
        return response;
    }
    let (mut parts, _body) = response.into_parts();
    let mut problem = match parts.extensions.remove::<Problem>() {
        Some(problem) => problem,
        None => problem_for_bare_status(status, method, uri.path(), &parts.headers),
    };
    problem.request_id = request_id.map(str::to_owned);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Some(seconds) = problem.retry_after_seconds {
        parts
            .headers
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    let body = problem.body();
    parts.extensions.insert(problem);
    Response::from_parts(parts, Body::from(body))
}

/// Middleware form of [`finalize`], for routers outside the main stack (the admin listener).
pub async fn render(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(crate::http::REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let response = next.run(request).await;
    finalize(response, request_id.as_deref(), &method, &uri)
}

/// A problem for an error response some layer produced without one.
fn problem_for_bare_status(
    status: StatusCode,
    method: &axum::http::Method,
    path: &str,
    headers: &axum::http::HeaderMap,
) -> Problem {
    let problem = Problem::from_status(status);
    match status {
        StatusCode::NOT_FOUND => problem.with_detail(format!("No resource at `{path}`.")),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = headers
                .get(header::ALLOW)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default();
            problem.with_detail(format!(
                "Method {method} is not allowed on `{path}`; allowed: {allowed}."
            ))
        }
        StatusCode::PAYLOAD_TOO_LARGE => body_too_large(),
        _ => problem,
    }
}

/// The `413` of a body over `server.body_limit`, whoever noticed it: the platform layer (a
/// declared length) or the JSON extractor (a chunked body cut at the limit).
pub(crate) fn body_too_large() -> Problem {
    Problem::from_status(StatusCode::PAYLOAD_TOO_LARGE)
        .with_detail("The request body is larger than this server accepts.")
}

/// The fallback for unknown routes: a 404 problem.
pub async fn not_found(request: Request) -> Problem {
    Problem::not_found(format!("No resource at `{}`.", request.uri().path()))
}

/// The shape of a problem body, for OpenAPI documents (`Problem` itself is built, not parsed).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemDocument {
    /// A URI identifying the problem type (`about:blank` or `urn:problem:<slug>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// The `x-request-id` of the request, to quote when reporting it.
    pub request_id: String,
}
