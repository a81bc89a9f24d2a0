//! A JSON extractor whose every rejection is a problem: 415 for a missing or wrong content
//! type, 400 for malformed JSON, 422 for well-formed JSON of the wrong shape, 413 for a body over
//! the limit.

use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;

use crate::http::problem::Problem;

/// `axum::Json`, answering bad bodies with problems.
///
/// ```
/// use platform::http::json::Json;
/// async fn handler(Json(body): Json<serde_json::Value>) -> String {
///     body.to_string()
/// }
/// let _router: axum::Router = axum::Router::new().route("/", axum::routing::post(handler));
/// ```
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(Problem))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
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
