//! `MessagesError` and its one mapping into a problem response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::Problem;
use platform::storage::StorageError;

use crate::domain::ValidationError;

/// Everything a messages request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum MessagesError {
    /// A bad digest or cursor. Maps to `400 Bad Request`.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// `limit` outside 1..=max. Maps to `400 Bad Request`.
    #[error("limit must be between 1 and {max}; got {got}")]
    Limit {
        /// What was asked.
        got: usize,
        /// The largest page.
        max: usize,
    },
    /// The message is over `messages.max_bytes`. Maps to `413 Content Too Large`.
    #[error("the message has {size} bytes; the limit is {max} bytes")]
    TooLarge {
        /// Its UTF-8 length.
        size: usize,
        /// `messages.max_bytes`.
        max: usize,
    },
    /// No message has this digest. Maps to `404` with the original API's `err_msg`.
    #[error("no message has the digest {0}")]
    NotFound(String),
    /// No or a wrong bearer token while `auth.tokens` is set. Maps to `401` with
    /// `WWW-Authenticate`.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The stored record cannot be read: data written by something else. Maps to `500`.
    #[error("the record stored under {0} is not a message record")]
    CorruptRecord(String),
    /// Maps to `503` with `Retry-After` when the backend is unavailable, else `500`.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<MessagesError> for Problem {
    fn from(error: MessagesError) -> Problem {
        let detail = error.to_string();
        match &error {
            MessagesError::Invalid(ValidationError::Digest(_)) => {
                Problem::new(StatusCode::BAD_REQUEST, "invalid-digest", "Invalid digest")
                    .with_detail(detail)
            }
            MessagesError::Invalid(ValidationError::Cursor(_)) => {
                Problem::new(StatusCode::BAD_REQUEST, "invalid-cursor", "Invalid cursor")
                    .with_detail(detail)
            }
            MessagesError::Limit { .. } => Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-limit",
                "Invalid page limit",
            )
            .with_detail(detail),
            MessagesError::TooLarge { .. } => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "message-too-large",
                "Message too large",
            )
            .with_detail(detail),
            MessagesError::NotFound(_) => Problem::new(
                StatusCode::NOT_FOUND,
                "message-not-found",
                "Message not found",
            )
            .with_detail(detail)
            .with_extension("err_msg", "Message not found"),
            MessagesError::Unauthorized(_) => {
                Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
                    .with_detail(detail)
            }
            MessagesError::Storage(storage) if storage.is_temporary() => {
                tracing::warn!(error = %storage, "Storage is unavailable.");
                Problem::unavailable("The message store is unavailable; retry shortly.")
            }
            MessagesError::Storage(_) | MessagesError::CorruptRecord(_) => {
                tracing::error!(error = %error, "Storage failed.");
                Problem::internal()
            }
        }
    }
}

impl IntoResponse for MessagesError {
    fn into_response(self) -> Response {
        let challenge = match &self {
            MessagesError::Unauthorized(reason) if reason.starts_with("no ") => {
                Some(r#"Bearer realm="messages""#)
            }
            MessagesError::Unauthorized(_) => {
                Some(r#"Bearer realm="messages", error="invalid_token""#)
            }
            _ => None,
        };
        let mut response = Problem::from(self).into_response();
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
