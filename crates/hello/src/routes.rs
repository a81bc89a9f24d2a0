//! The birthday API: handlers extract validated input, call the domain and storage, and return.
//!
//! - `PUT /hello/{username}` `{"dateOfBirth":"YYYY-MM-DD"}` → 204.
//! - `GET /hello/{username}` → 200 `{"message":"Hello, <username>! …"}`, 404 when unknown.
//!
//! The platform documents and answers what every route shares (413, 415, 503, …; see
//! `platform::http::openapi::document`); the annotations here list what hello itself says.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use platform::http::json::Json;
use platform::http::path::Path;
use platform::http::problem::ProblemDocument;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::domain::{self, DateOfBirth, Username};
use crate::error::HelloError;
use crate::state::AppState;

/// The body of `PUT /hello/{username}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SaveBirthday {
    /// A calendar date strictly before today (UTC), `YYYY-MM-DD`. Today or later is a 422 problem.
    #[schema(example = "1990-05-17", format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    date_of_birth: String,
}

/// The body of `GET /hello/{username}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Greeting<'a> {
    /// `Hello, <username>! Your birthday is in N day(s)` or `Hello, <username>! Happy birthday!`.
    #[schema(value_type = String, example = "Hello, alice! Your birthday is in 5 days")]
    message: domain::Greeting<'a>,
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/hello/{username}", get(get_birthday).put(put_birthday))
        .route("/hello/", get(empty_username).put(empty_username))
        .with_state(state)
}

/// Saves or replaces a user's date of birth.
#[utoipa::path(
    put,
    path = "/hello/{username}",
    params(("username" = String, Path, description = "1 to 64 ASCII letters", pattern = "^[A-Za-z]{1,64}$")),
    request_body(content = SaveBirthday, content_type = "application/json"),
    responses(
        (status = 204, description = "Saved"),
        (status = 400, description = "Invalid username or malformed JSON", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "Missing or invalid dateOfBirth, or not before today", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
async fn put_birthday(
    State(state): State<AppState>,
    Path(username): Path<String>,
    Json(body): Json<SaveBirthday>,
) -> Result<StatusCode, HelloError> {
    let username = Username::parse(&username)?;
    let birth = DateOfBirth::parse(&body.date_of_birth, state.clock.today_utc())?;
    state
        .store
        .put(username.as_str(), &birth.iso_bytes())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Greets a user with the days until their birthday.
#[utoipa::path(
    get,
    path = "/hello/{username}",
    params(("username" = String, Path, description = "1 to 64 ASCII letters", pattern = "^[A-Za-z]{1,64}$")),
    responses(
        (status = 200, description = "The greeting", body = Greeting),
        (status = 400, description = "Invalid username", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No birthday stored for this user", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
async fn get_birthday(
    State(state): State<AppState>,
    Path(username): Path<String>,
) -> Result<Response, HelloError> {
    let username = Username::parse(&username)?;
    let stored = state
        .store
        .get(username.as_str())
        .await?
        .ok_or_else(|| HelloError::UnknownUser(username.as_str().to_owned()))?;
    let birth = std::str::from_utf8(&stored)
        .ok()
        .and_then(|raw| DateOfBirth::parse_stored(raw).ok())
        .ok_or_else(|| HelloError::CorruptValue(username.as_str().to_owned()))?;
    let message = domain::greeting(&username, birth, state.clock.today_utc());
    // Answered here: the greeting borrows the username, which ends with this function.
    Ok(Json(Greeting { message }).into_response())
}

async fn empty_username() -> HelloError {
    HelloError::Invalid(domain::ValidationError::Username {
        reason: "it is empty".to_owned(),
    })
}

/// The OpenAPI document served at `GET /openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "hello", description = "The birthday API."),
    paths(put_birthday, get_birthday),
    components(schemas(SaveBirthday, Greeting, ProblemDocument))
)]
pub struct ApiDoc;
