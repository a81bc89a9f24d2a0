//! A path extractor whose rejection is a 400 problem (e.g. a segment that is not valid UTF-8
//! after percent-decoding).

use axum::extract::FromRequestParts;
use axum::extract::rejection::PathRejection;
use axum::http::StatusCode;

use crate::http::problem::Problem;

/// `axum::extract::Path`, answering bad paths with a 400 problem.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Problem))]
pub struct Path<T>(pub T);

impl From<PathRejection> for Problem {
    fn from(rejection: PathRejection) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-path", "Invalid path")
            .with_detail(rejection.body_text())
    }
}
