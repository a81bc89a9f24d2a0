//! `NotesError` and its one mapping into a problem response.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use platform::Problem;
use platform::storage::StorageError;

/// Everything a notes request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    /// No such pad or note for this user (another user's is not found either), or an id that is
    /// not a number. Maps to `404 Not Found`.
    #[error("{0}")]
    NotFound(&'static str),
    /// A form POST without the right CSRF token. Maps to `403 Forbidden`.
    #[error("the form's CSRF token is missing or wrong; reload the page and try again")]
    Csrf,
    /// An API request without a valid token or session. Maps to `401` with `WWW-Authenticate`.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Too many sign-in attempts for the account or from the client. Maps to `429` with
    /// `Retry-After`.
    #[error("too many sign-in attempts; retry in {} s", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// API input that breaks a rule, per field. Maps to `422` with an `errors` member.
    #[error("the request has invalid fields")]
    Invalid(BTreeMap<&'static str, &'static str>),
    /// A form body that is not `application/x-www-form-urlencoded` text. Maps to `400`.
    #[error("the form body cannot be read: {0}")]
    BadForm(String),
    /// A form body over `server.body_limit`. Maps to `413`.
    #[error("the form is larger than this server accepts")]
    TooLarge,
    /// The password-reset mail could not be sent. Maps to `503` with `Retry-After`.
    #[error("mail cannot be sent: {0}")]
    Mail(String),
    /// Every password-hashing turn stayed taken for `signin.hash_wait`. Maps to `503` with
    /// `Retry-After`.
    #[error("{0}; retry shortly")]
    Busy(&'static str),
    /// A bug: a template that does not render, a hashing task that died. Maps to `500`.
    #[error("{0}")]
    Internal(String),
    /// Maps to `503` with `Retry-After` when the database is unavailable, else `500`.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<askama::Error> for NotesError {
    fn from(error: askama::Error) -> NotesError {
        NotesError::Internal(format!("template: {error}"))
    }
}

impl From<NotesError> for Problem {
    fn from(error: NotesError) -> Problem {
        let detail = error.to_string();
        match error {
            NotesError::NotFound(_) => Problem::not_found(detail),
            NotesError::Csrf => {
                Problem::new(StatusCode::FORBIDDEN, "csrf", "Forbidden").with_detail(detail)
            }
            NotesError::Unauthorized(_) => {
                Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
                    .with_detail(detail)
            }
            NotesError::RateLimited(wait) => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            )
            .with_detail(detail)
            .with_retry_after(u32::try_from(wait.as_secs().max(1)).unwrap_or(u32::MAX)),
            NotesError::Invalid(errors) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-fields",
                "Invalid fields",
            )
            .with_detail(detail)
            .with_extension(
                "errors",
                serde_json::to_value(errors).unwrap_or(serde_json::Value::Null),
            ),
            NotesError::BadForm(_) => {
                Problem::new(StatusCode::BAD_REQUEST, "bad-form", "Bad form").with_detail(detail)
            }
            NotesError::TooLarge => {
                Problem::from_status(StatusCode::PAYLOAD_TOO_LARGE).with_detail(detail)
            }
            NotesError::Mail(reason) => {
                tracing::error!(error = %reason, "Mail cannot be sent.");
                Problem::unavailable("Mail cannot be sent right now; retry shortly.")
            }
            NotesError::Busy(_) => Problem::unavailable(detail),
            NotesError::Storage(storage) if storage.is_temporary() => {
                tracing::warn!(error = %storage, "Storage is unavailable.");
                Problem::unavailable("The notes database is unavailable; retry shortly.")
            }
            NotesError::Storage(storage) => {
                tracing::error!(error = %storage, "Storage failed.");
                Problem::internal()
            }
            NotesError::Internal(reason) => {
                tracing::error!(error = %reason, "Request failed.");
                Problem::internal()
            }
        }
    }
}

impl IntoResponse for NotesError {
    fn into_response(self) -> Response {
        let unauthorized = matches!(self, NotesError::Unauthorized(_));
        let mut response = Problem::from(self).into_response();
        if unauthorized {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(r#"Bearer realm="notes""#),
            );
        }
        response
    }
}
