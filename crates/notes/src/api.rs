//! The JSON API under `/api/v1`, authenticated by `Authorization: Bearer <token>` (from
//! `POST /api/v1/tokens`) or by the browser's session cookie. Errors are problems.
//!
//! - `POST /api/v1/tokens` `{"email","password"}` → 201 `{"token"}` (rate limited as sign-in).
//! - `GET|POST /api/v1/pads`, `GET|PUT|DELETE /api/v1/pads/{id}`.
//! - `GET|POST /api/v1/notes` (`?order=`, `?pad=`), `GET|PUT|DELETE /api/v1/notes/{id}`.
//!
//! Cookie-authenticated writes need no CSRF token: they only accept `application/json`, which a
//! cross-site form cannot send and a cross-site script cannot send without a CORS preflight that
//! this service never grants.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use platform::http::json::Json;
use platform::http::openapi::BearerScheme;
use platform::http::problem::ProblemDocument;
use platform::http::query::Query;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::domain::{self, Order};
use crate::error::NotesError;
use crate::state::AppState;
use crate::storage::{NoteFields, User};
use crate::users;

/// The authenticated user of an API request.
pub struct ApiUser(pub User);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = NotesError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<ApiUser, NotesError> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        if let Some(token) = bearer {
            return match state
                .repository
                .user_by_api_token(&users::token_hash(token))
                .await?
            {
                Some(user) => Ok(ApiUser(user)),
                None => Err(NotesError::Unauthorized("the bearer token is not valid")),
            };
        }
        let cookies = crate::session::cookies(&parts.headers);
        if let Some(token) = cookies.get(crate::session::SESSION_COOKIE) {
            let now = domain::micros(state.clock.now_utc());
            if let Some(session) = state
                .repository
                .session(&users::token_hash(token), now)
                .await?
            {
                return Ok(ApiUser(session.user));
            }
        }
        Err(NotesError::Unauthorized(
            "send `Authorization: Bearer <token>` (from POST /api/v1/tokens) or a session cookie",
        ))
    }
}

/// The id in an API path ([`domain::parse_id`]); anything else is a resource not found.
fn parse_id(raw: &str) -> Result<i64, NotesError> {
    domain::parse_id(raw).ok_or(NotesError::NotFound("no such resource"))
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Credentials {
    /// The account's email.
    email: String,
    /// Its password.
    password: String,
}

/// A new API token: shown once, stored only as its SHA-256.
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    /// Send it as `Authorization: Bearer <token>`.
    token: String,
}

/// A pad.
#[derive(Debug, Serialize, ToSchema)]
pub struct PadDocument {
    #[schema(minimum = 1)]
    id: i64,
    name: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    updated_at: String,
}

/// A note.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoteDocument {
    #[schema(minimum = 1)]
    id: i64,
    name: String,
    text: String,
    #[schema(minimum = 1)]
    pad_id: Option<i64>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    updated_at: String,
}

/// A pad's or note's name: 1 to 100 characters once white space is trimmed from both ends. The
/// classes of the pattern are exactly the characters Rust's `char::is_whitespace` trims, so the
/// document and `domain::parse_name` agree on every string.
#[derive(ToSchema)]
#[schema(
    pattern = r"^[\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[\s\S]{0,98}[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
)]
pub struct NameText(pub String);

/// A note's text: anything with at least one character that is not white space.
#[derive(ToSchema)]
#[schema(
    pattern = r"[^\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)]
pub struct NoteText(pub String);

/// The body of `POST`/`PUT /api/v1/pads…`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PadInput {
    /// 1 to 100 characters after trimming white space (the pattern says exactly that).
    #[schema(value_type = NameText)]
    name: String,
}

/// The body of `POST`/`PUT /api/v1/notes…`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NoteInput {
    /// 1 to 100 characters after trimming white space (the pattern says exactly that).
    #[schema(value_type = NameText)]
    name: String,
    /// Not only white space.
    #[schema(value_type = NoteText)]
    text: String,
    /// One of the user's pads (another id is a 422 problem), or absent/null for none. A number
    /// with a zero fraction (`3.0`) is the integer it equals, as JSON Schema has it.
    #[serde(default, deserialize_with = "optional_integer")]
    #[schema(minimum = 1)]
    pad_id: Option<i64>,
}

/// An optional integer as JSON Schema's `integer` has it: `3`, and `3.0` too.
fn optional_integer<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(integer) = number.as_i64() {
        return Ok(Some(integer));
    }
    number
        .as_f64()
        .filter(|float| float.fract() == 0.0)
        .and_then(|float| format!("{float:.0}").parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!("invalid value: {number}, expected an i64 integer"))
        })
}

/// Filters of `GET /api/v1/notes`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoteFilter {
    /// `name`, `-name`, `updated_at` or `-updated_at` (the default).
    order: Option<String>,
    /// Only the notes of this pad.
    pad: Option<i64>,
}

fn rfc3339(micros: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn pad_document(pad: crate::storage::Pad) -> PadDocument {
    PadDocument {
        id: pad.id,
        name: pad.name,
        created_at: rfc3339(pad.created_at),
        updated_at: rfc3339(pad.updated_at),
    }
}

fn note_document(note: crate::storage::Note) -> NoteDocument {
    NoteDocument {
        id: note.id,
        name: note.name,
        text: note.text,
        pad_id: note.pad_id,
        created_at: rfc3339(note.created_at),
        updated_at: rfc3339(note.updated_at),
    }
}

fn created<T: Serialize>(location: String, body: T) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response()
}

/// Issues an API token for an email and password.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    request_body(content = Credentials, content_type = "application/json"),
    responses(
        (status = 201, description = "The new token", body = Token),
        (status = 401, description = "Wrong email or password", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    connect_info: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: axum::http::HeaderMap,
    Json(credentials): Json<Credentials>,
) -> Result<Response, NotesError> {
    let mut probe = axum::http::Request::new(());
    *probe.headers_mut() = headers;
    if let Some(Extension(connect_info)) = connect_info {
        probe.extensions_mut().insert(connect_info);
    }
    let client = platform::http::client_ip::client_ip(&probe, &state.trusted_proxies);
    let email = domain::normalize_email(&credentials.email);
    if let Err(wait) = state.signin_limiter.check(&email, client) {
        crate::metrics::count_signin("rate_limited");
        return Err(NotesError::RateLimited(wait));
    }
    let user = state.repository.user_by_email(&email).await?;
    let Some(user) = user else {
        state.passwords.verify(credentials.password, None).await?;
        crate::metrics::count_signin("unknown_user");
        return Err(NotesError::Unauthorized("wrong email or password"));
    };
    if !state
        .passwords
        .verify(credentials.password, Some(user.password_hash.clone()))
        .await?
    {
        crate::metrics::count_signin("wrong_password");
        return Err(NotesError::Unauthorized("wrong email or password"));
    }
    let token = users::new_token();
    state
        .repository
        .create_api_token(
            &users::token_hash(&token),
            user.id,
            domain::micros(state.clock.now_utc()),
        )
        .await?;
    crate::metrics::count_signin("success");
    Ok((StatusCode::CREATED, Json(Token { token })).into_response())
}

/// The user's pads, by name.
#[utoipa::path(get, path = "/api/v1/pads",
    responses((status = 200, body = [PadDocument])),
    security(("bearer" = [])))]
pub(crate) async fn list_pads(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
) -> Result<Json<Vec<PadDocument>>, NotesError> {
    let pads = state.repository.pads(user.id).await?;
    Ok(Json(pads.into_iter().map(pad_document).collect()))
}

fn check_pad(input: &PadInput) -> Result<String, NotesError> {
    domain::parse_name(&input.name)
        .map_err(|error| NotesError::Invalid(BTreeMap::from([("name", error)])))
}

/// Creates a pad.
#[utoipa::path(post, path = "/api/v1/pads",
    request_body(content = PadInput, content_type = "application/json"),
    responses((status = 201, body = PadDocument),
        (status = 422, description = "Invalid fields (`errors` by field)", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn create_pad(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Json(input): Json<PadInput>,
) -> Result<Response, NotesError> {
    let name = check_pad(&input)?;
    let id = state
        .repository
        .create_pad(user.id, &name, domain::micros(state.clock.now_utc()))
        .await?;
    let pad = state
        .repository
        .pad(user.id, id)
        .await?
        .ok_or(NotesError::NotFound("no such pad"))?;
    Ok(created(format!("/api/v1/pads/{id}"), pad_document(pad)))
}

/// One pad.
#[utoipa::path(get, path = "/api/v1/pads/{id}",
    params(("id" = i64, Path, description = "The pad's id", minimum = 1)),
    responses((status = 200, body = PadDocument),
        (status = 404, description = "No such pad of this user", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn get_pad(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<PadDocument>, NotesError> {
    let pad = state
        .repository
        .pad(user.id, parse_id(&id)?)
        .await?
        .ok_or(NotesError::NotFound("no such pad"))?;
    Ok(Json(pad_document(pad)))
}

/// Renames a pad.
#[utoipa::path(put, path = "/api/v1/pads/{id}",
    params(("id" = i64, Path, description = "The pad's id", minimum = 1)),
    request_body(content = PadInput, content_type = "application/json"),
    responses((status = 200, body = PadDocument), (status = 404, body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn update_pad(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    axum::extract::Path(id): axum::extract::Path<String>,
    Json(input): Json<PadInput>,
) -> Result<Json<PadDocument>, NotesError> {
    let id = parse_id(&id)?;
    let name = check_pad(&input)?;
    if !state
        .repository
        .rename_pad(user.id, id, &name, domain::micros(state.clock.now_utc()))
        .await?
    {
        return Err(NotesError::NotFound("no such pad"));
    }
    let pad = state
        .repository
        .pad(user.id, id)
        .await?
        .ok_or(NotesError::NotFound("no such pad"))?;
    Ok(Json(pad_document(pad)))
}

/// Deletes a pad and its notes.
#[utoipa::path(delete, path = "/api/v1/pads/{id}",
    params(("id" = i64, Path, description = "The pad's id", minimum = 1)),
    responses((status = 204), (status = 404, body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn delete_pad(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, NotesError> {
    if state.repository.delete_pad(user.id, parse_id(&id)?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(NotesError::NotFound("no such pad"))
    }
}

/// The user's notes.
#[utoipa::path(get, path = "/api/v1/notes", params(NoteFilter),
    responses((status = 200, body = [NoteDocument])),
    security(("bearer" = [])))]
pub(crate) async fn list_notes(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Query(filter): Query<NoteFilter>,
) -> Result<Json<Vec<NoteDocument>>, NotesError> {
    let order = Order::parse(filter.order.as_deref());
    let notes = state.repository.notes(user.id, filter.pad, order).await?;
    Ok(Json(notes.into_iter().map(note_document).collect()))
}

async fn check_note(
    state: &AppState,
    user: &User,
    input: &NoteInput,
) -> Result<(String, String), NotesError> {
    let mut errors = BTreeMap::new();
    let name = domain::parse_name(&input.name).map_err(|error| errors.insert("name", error));
    let text = domain::parse_text(&input.text).map_err(|error| errors.insert("text", error));
    if let Some(pad_id) = input.pad_id
        && state.repository.pad(user.id, pad_id).await?.is_none()
    {
        errors.insert("pad_id", "Pad does not exist");
    }
    match (name, text) {
        (Ok(name), Ok(text)) if errors.is_empty() => Ok((name, text)),
        _ => Err(NotesError::Invalid(errors)),
    }
}

/// Creates a note.
#[utoipa::path(post, path = "/api/v1/notes",
    request_body(content = NoteInput, content_type = "application/json"),
    responses((status = 201, body = NoteDocument),
        (status = 422, description = "Invalid fields, or a pad that is not the user's", body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn create_note(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Json(input): Json<NoteInput>,
) -> Result<Response, NotesError> {
    let (name, text) = check_note(&state, &user, &input).await?;
    let fields = NoteFields {
        pad_id: input.pad_id,
        name: &name,
        text: &text,
    };
    // What was stored, as the insert stored it: a read after it could miss a note whose pad
    // was deleted meanwhile.
    let note = state
        .repository
        .create_note(user.id, &fields, domain::micros(state.clock.now_utc()))
        .await?
        .ok_or_else(|| NotesError::Invalid(BTreeMap::from([("pad_id", "Pad does not exist")])))?;
    Ok(created(
        format!("/api/v1/notes/{}", note.id),
        note_document(note),
    ))
}

/// One note.
#[utoipa::path(get, path = "/api/v1/notes/{id}",
    params(("id" = i64, Path, description = "The note's id", minimum = 1)),
    responses((status = 200, body = NoteDocument), (status = 404, body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn get_note(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<NoteDocument>, NotesError> {
    let note = state
        .repository
        .note(user.id, parse_id(&id)?)
        .await?
        .ok_or(NotesError::NotFound("no such note"))?;
    Ok(Json(note_document(note)))
}

/// Replaces a note's name, text and pad.
#[utoipa::path(put, path = "/api/v1/notes/{id}",
    params(("id" = i64, Path, description = "The note's id", minimum = 1)),
    request_body(content = NoteInput, content_type = "application/json"),
    responses((status = 200, body = NoteDocument), (status = 404, body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn update_note(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    axum::extract::Path(id): axum::extract::Path<String>,
    Json(input): Json<NoteInput>,
) -> Result<Json<NoteDocument>, NotesError> {
    let id = parse_id(&id)?;
    if state.repository.note(user.id, id).await?.is_none() {
        return Err(NotesError::NotFound("no such note"));
    }
    let (name, text) = check_note(&state, &user, &input).await?;
    let fields = NoteFields {
        pad_id: input.pad_id,
        name: &name,
        text: &text,
    };
    state
        .repository
        .update_note(user.id, id, &fields, domain::micros(state.clock.now_utc()))
        .await?;
    let note = state
        .repository
        .note(user.id, id)
        .await?
        .ok_or(NotesError::NotFound("no such note"))?;
    Ok(Json(note_document(note)))
}

/// Deletes a note.
#[utoipa::path(delete, path = "/api/v1/notes/{id}",
    params(("id" = i64, Path, description = "The note's id", minimum = 1)),
    responses((status = 204), (status = 404, body = ProblemDocument, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(crate) async fn delete_note(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, NotesError> {
    if state
        .repository
        .delete_note(user.id, parse_id(&id)?)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(NotesError::NotFound("no such note"))
    }
}

/// The OpenAPI document served at `GET /openapi.json`. It lives beside the operations it lists:
/// named from another module (`api::create_token`), utoipa would tag every operation `api`.
#[derive(OpenApi)]
#[openapi(
    info(title = "notes", description = "Notejam's pads and notes as a JSON API."),
    paths(create_token, list_pads, create_pad, get_pad, update_pad, delete_pad,
        list_notes, create_note, get_note, update_note, delete_note),
    components(schemas(Credentials, Token, PadDocument, NoteDocument, PadInput, NoteInput, NameText,
        NoteText, ProblemDocument)),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;
