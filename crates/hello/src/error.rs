//! `HelloError` and its one mapping into a problem response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform::Problem;
use platform::storage::StorageError;

use crate::domain::ValidationError;

/// Everything a hello request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HelloError {
    /// Maps to `400 Bad Request` (username) or `422 Unprocessable Entity` (date).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No birthday is stored for the user. Maps to `404 Not Found`.
    #[error("no birthday is stored for `{0}`")]
    UnknownUser(String),
    /// The stored value is not a date: data written by something else. Maps to `500`.
    #[error("the stored value for `{0}` is not a date")]
    CorruptValue(String),
    /// Maps to `503` with `Retry-After` when the backend is unavailable, else `500`.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<HelloError> for Problem {
    fn from(error: HelloError) -> Problem {
        match &error {
            HelloError::Invalid(ValidationError::Username { .. }) => Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-username",
                "Invalid username",
            )
            .with_detail(error.to_string()),
            HelloError::Invalid(ValidationError::DateFormat(_)) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-date",
                "Invalid date of birth",
            )
            .with_detail(error.to_string()),
            HelloError::Invalid(ValidationError::DateNotInPast { .. }) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "date-not-in-past",
                "Date of birth is not in the past",
            )
            .with_detail(error.to_string()),
            HelloError::UnknownUser(_) => {
                Problem::new(StatusCode::NOT_FOUND, "unknown-user", "Unknown user")
                    .with_detail(error.to_string())
            }
            HelloError::Storage(storage) if storage.is_temporary() => {
                tracing::warn!(error = %storage, "Storage is unavailable.");
                Problem::unavailable("The birthday store is unavailable; retry shortly.")
            }
            HelloError::Storage(_) | HelloError::CorruptValue(_) => {
                tracing::error!(error = %error, "Storage failed.");
                Problem::internal()
            }
        }
    }
}

impl IntoResponse for HelloError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
