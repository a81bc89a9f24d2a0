//! JSON in and out. As an extractor every rejection is a problem: 415 for a missing or wrong
//! content type, 400 for malformed JSON, 422 for well-formed JSON of the wrong shape, 413 for a
//! body over the limit. As an answer its header map is made big enough for every header the
//! platform adds on the way out, so none of them grows it.

use axum::body::Body;
use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, BytesMut};

use crate::http::problem::Problem;

/// `axum::Json`, answering bad bodies with problems.
///
/// ```
/// use platform::http::json::Json;
/// async fn handler(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
///     Json(serde_json::json!({ "received": body }))
/// }
/// let _router: axum::Router = axum::Router::new().route("/", axum::routing::post(handler));
/// ```
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(Problem))]
pub struct Json<T>(pub T);

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
            JsonRejection::MissingJsonContentType(_) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            )
            .with_detail("The body must be JSON, sent with `Content-Type: application/json`."),
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
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Problem::from_status(StatusCode::PAYLOAD_TOO_LARGE)
                    .with_detail("The request body is larger than this server accepts.")
            }
            other => Problem::new(other.status(), "unreadable-body", "Unreadable request body")
                .with_detail(other.body_text()),
        }
    }
}
