//! JSON in and out. As an extractor every rejection is a problem: 415 for a missing or wrong
//! content type, 400 for malformed JSON, 422 for well-formed JSON of the wrong shape, 413 for a
//! body over the limit. As an answer its header map is made big enough for every header the
//! platform adds on the way out, so none of them grows it.

use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, LengthLimitError};
use serde::de::DeserializeOwned;

use crate::http::problem::{Problem, body_too_large};

/// `axum::Json`, answering bad bodies with problems.
///
/// ```
/// use platform::http::json::Json;
/// async fn handler(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
///     Json(serde_json::json!({ "received": body }))
/// }
/// let _router: axum::Router = axum::Router::new().route("/", axum::routing::post(handler));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// Reads the body as `axum::Json` does, with two costs left out: the content type is compared
/// as bytes instead of parsed as a MIME type (about 1,200 instructions a request), and the body
/// is read as it comes, without axum's own 2 MiB limit on top: the platform layer has already
/// bounded it by `server.body_limit` (a declared length over it is refused before the route
/// runs, a chunked body is cut at it), which is the one limit a service configures.
impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Problem> {
        if !is_json(request.headers()) {
            return Err(not_json());
        }
        let body = read(request.into_body()).await?;
        let axum::Json(value) = axum::Json::<T>::from_bytes(&body)?;
        Ok(Json(value))
    }
}

/// The `415` of a body that is not declared JSON.
fn not_json() -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
    )
    .with_detail("The body must be JSON, sent with `Content-Type: application/json`.")
}

/// `application/json`, or any `application/…+json`, with or without parameters, in any case:
/// what `axum::Json` accepts.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let value = value.as_bytes();
    if value == b"application/json" {
        return true;
    }
    let essence = value
        .split(|byte| *byte == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let Some(subtype) = essence
        .get(..12)
        .filter(|kind| kind.eq_ignore_ascii_case(b"application/"))
        .and_then(|_| essence.get(12..))
    else {
        return false;
    };
    subtype.eq_ignore_ascii_case(b"json")
        || subtype.len() > 5
            && subtype
                .get(subtype.len() - 5..)
                .is_some_and(|suffix| suffix.eq_ignore_ascii_case(b"+json"))
}

/// The whole body; a chunked body cut at `server.body_limit` is a 413, anything else that
/// stops the read (the client went away mid-body) a 400.
async fn read(body: Body) -> Result<Bytes, Problem> {
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            while let Some(cause) = source {
                if cause.is::<LengthLimitError>() {
                    return Err(body_too_large());
                }
                source = cause.source();
            }
            Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "unreadable-body",
                "Unreadable request body",
            )
            .with_detail(format!("The request body could not be read: {error}")))
        }
    }
}

/// The headers a JSON answer leaves with: its type and length, then the four security headers
/// and the request id the platform layer adds. `axum::Json` makes a map for one, which the
/// seventh header then grows (a second allocation and a rehash, about 1,000 instructions).
const ANSWER_HEADERS: usize = 7;

/// Most answers are short; a longer one grows the buffer once or twice.
const INITIAL_BODY: usize = 128;

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = BytesMut::with_capacity(INITIAL_BODY).writer();
        if let Err(error) = serde_json::to_writer(&mut body, &self.0) {
            // A type whose `Serialize` can fail (a map with non-string keys): a bug, not input.
            tracing::error!(%error, "A JSON answer could not be serialized; answered 500.");
            return Problem::internal().into_response();
        }
        let body = body.into_inner().freeze();
        let mut headers = HeaderMap::with_capacity(ANSWER_HEADERS);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        let mut response = Response::new(Body::from(body));
        *response.headers_mut() = headers;
        response
    }
}

impl From<JsonRejection> for Problem {
    fn from(rejection: JsonRejection) -> Problem {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => not_json(),
            JsonRejection::JsonSyntaxError(error) => {
                Problem::new(StatusCode::BAD_REQUEST, "malformed-json", "Malformed JSON")
                    .with_detail(format!("The body is not valid JSON: {}", error.body_text()))
            }
            JsonRejection::JsonDataError(error) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-body",
                "Invalid request body",
            )
            .with_detail(error.body_text()),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => body_too_large(),
            other => Problem::new(other.status(), "unreadable-body", "Unreadable request body")
                .with_detail(other.body_text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn json_content_types_are_recognised_as_axum_recognises_them() {
        for json in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/problem+json",
            "application/vnd.api+json ; x=y",
        ] {
            assert!(is_json(&typed(json)), "{json}");
        }
        for other in [
            "text/json",
            "application/jsonx",
            "application/+json",
            "application/xml",
            "text/plain",
            "json",
            "",
        ] {
            assert!(!is_json(&typed(other)), "{other}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
