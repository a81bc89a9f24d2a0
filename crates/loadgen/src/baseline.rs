//! The bare axum handler every service is compared with: the same routes as hello, no middleware,
//! a fixed JSON body. Whatever hello costs above this is the platform stack, the domain and storage.

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

/// The body `GET /hello/{username}` answers, the size of a real hello greeting.
pub const GREETING: &str = r#"{"message":"Hello, alice! Your birthday is in 1 day"}"#;

/// `GET` and `PUT /hello/{username}`, nothing else: no request id, tracing, metrics or limits.
pub fn router() -> Router {
    Router::new().route("/hello/{username}", get(greet).put(save))
}

async fn greet() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], GREETING)
}

/// Reads the whole body, as hello must, and ignores it.
async fn save(_body: Bytes) -> StatusCode {
    StatusCode::NO_CONTENT
}
