//! The message store's API: handlers extract validated input, call storage, and return.
//!
//! - `POST /messages` `{"message": "..."}` → 201 `{"digest": "<sha256>"}`, idempotent.
//! - `GET /messages/{digest}` → 200 `{"message": "..."}`, 404 with `err_msg` when unknown.
//! - `GET /messages` and `GET /all-messages` → `{"digestList": [...], "next": "<cursor>"}` in
//!   first-insertion order.
//!
//! The platform documents and answers what every route shares (400 for malformed JSON, 401
//! with the bearer scheme, 415, 503, …; see `platform::http::openapi::document`); the
//! annotations here list what messages itself says.

use platform::http::openapi::BearerScheme;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use platform::http::json::Json;
use platform::http::path::Path;
use platform::http::problem::ProblemDocument;
use platform::http::query::Query;
use platform::http::ratelimit::RateLimiter;
use platform::storage::{BatchOutcome, BatchWrite};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::auth::Tokens;
use crate::domain::{Digest, LISTING_PREFIX, ListingKey, Record};
use crate::error::MessagesError;
use crate::metrics::STORED_TOTAL;
use crate::state::AppState;

/// The body of `POST /messages`: a JSON object (never an array, which serde would otherwise
/// read positionally) with a string `message`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(try_from = "serde_json::Map<String, serde_json::Value>")]
pub struct NewMessage {
    /// Any UTF-8 text up to `messages.max_bytes` (64 KiB by default).
    #[schema(example = "foo")]
    message: String,
}

impl TryFrom<serde_json::Map<String, serde_json::Value>> for NewMessage {
    type Error = &'static str;

    fn try_from(
        mut object: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, Self::Error> {
        match object.remove("message") {
            Some(serde_json::Value::String(message)) => Ok(NewMessage { message }),
            Some(_) => Err("`message` must be a string"),
            None => Err("missing field `message`"),
        }
    }
}

/// The answer to `POST /messages`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stored {
    /// The lowercase hex SHA-256 of the message's UTF-8 bytes.
    #[schema(
        example = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
        pattern = "^[0-9a-f]{64}$"
    )]
    digest: String,
}

/// The answer to `GET /messages/{digest}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    /// The message as it was posted.
    #[schema(example = "foo")]
    message: String,
}

/// A page of the listing.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DigestList {
    /// Digests in the order their messages were first stored.
    digest_list: Vec<String>,
    /// The `cursor` of the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9]{20}-[0-9a-f]{64}$")]
    next: Option<String>,
}

/// Paging through the listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Digests per page, 1 to 1000. Default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The `next` of the previous page. Anything that is not a listing key
    /// (`<20 digits>-<64 lowercase hex>`) is a 400 problem.
    #[param(pattern = "^[0-9]{20}-[0-9a-f]{64}$")]
    cursor: Option<String>,
}

/// The service's routes, behind the rate limit and then the bearer-token check.
pub fn router(state: AppState, tokens: Tokens, limiter: RateLimiter) -> Router {
    Router::new()
        .route("/messages", get(list_messages).post(post_message))
        .route("/all-messages", get(list_all_messages))
        .route("/messages/{digest}", get(get_message))
        .route("/messages/", get(empty_digest))
        .route_layer(middleware::from_fn_with_state(tokens, Tokens::enforce))
        .route_layer(middleware::from_fn_with_state(
            limiter,
            RateLimiter::enforce,
        ))
        .with_state(state)
}

/// Stores a message (once) and answers its digest.
#[utoipa::path(
    post,
    path = "/messages",
    request_body(content = NewMessage, content_type = "application/json"),
    responses(
        (status = 201, description = "Stored, or already stored: the digest", body = Stored,
            headers(("location" = String, description = "/messages/<digest>"))),
        (status = 413, description = "Message or body over the limit", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`message` missing or not a string", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []))
)]
async fn post_message(
    State(state): State<AppState>,
    Json(body): Json<NewMessage>,
) -> Result<Response, MessagesError> {
    let size = body.message.len();
    if size > state.max_bytes {
        return Err(MessagesError::TooLarge {
            size,
            max: state.max_bytes,
        });
    }
    let digest = Digest::of(&body.message);
    let record = Record {
        first_seen: state.clock.next(),
        message: body.message,
    };
    // Serialising a struct of a number and a string cannot fail.
    let bytes = serde_json::to_vec(&record).unwrap_or_default();
    let listed = ListingKey::new(record.first_seen, &digest);
    // The record and its listing entry in one atomic write: an acknowledged message is always
    // listed, and a new message costs one commit.
    let written = state
        .store
        .write_batch(&[
            BatchWrite::insert(digest.as_str(), bytes),
            BatchWrite::put(listed.stored(), Vec::new()),
        ])
        .await?;
    match written {
        BatchOutcome::Applied => ::metrics::counter!(STORED_TOTAL).increment(1),
        BatchOutcome::Conflict { .. } => {
            // Already stored, and so already listed, unless it was stored before the two
            // became one write and the process died between them (never acknowledged then).
            let listed = ListingKey::new(read_record(&state, &digest).await?.first_seen, &digest);
            if state.store.get(&listed.stored()).await?.is_none() {
                state.store.put(&listed.stored(), b"").await?;
            }
        }
    }
    let location = HeaderValue::from_str(&format!("/messages/{}", digest.as_str()))
        .map_err(|_| MessagesError::CorruptRecord(digest.as_str().to_owned()))?;
    let body = Stored {
        digest: digest.as_str().to_owned(),
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

async fn read_record(state: &AppState, digest: &Digest) -> Result<Record, MessagesError> {
    let stored = state
        .store
        .get(digest.as_str())
        .await?
        .ok_or_else(|| MessagesError::NotFound(digest.as_str().to_owned()))?;
    serde_json::from_slice(&stored)
        .map_err(|_| MessagesError::CorruptRecord(digest.as_str().to_owned()))
}

/// The message with this digest.
#[utoipa::path(
    get,
    path = "/messages/{digest}",
    params(("digest" = String, Path, description = "SHA-256, 64 hex characters (either case)", pattern = "^[0-9a-fA-F]{64}$")),
    responses(
        (status = 200, description = "The message", body = Message),
        (status = 400, description = "Not a digest", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "No such message; the body also carries `err_msg`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []))
)]
async fn get_message(
    State(state): State<AppState>,
    Path(digest): Path<String>,
) -> Result<Json<Message>, MessagesError> {
    let digest = Digest::parse(&digest)?;
    let record = read_record(&state, &digest).await?;
    Ok(Json(Message {
        message: record.message,
    }))
}

/// Digests in first-insertion order, a page at a time.
#[utoipa::path(
    get,
    path = "/messages",
    params(Page),
    responses(
        (status = 200, description = "A page of digests", body = DigestList),
        (status = 400, description = "Bad limit or cursor", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []))
)]
async fn list_messages(
    State(state): State<AppState>,
    Query(page): Query<Page>,
) -> Result<Json<DigestList>, MessagesError> {
    list(&state, page).await.map(Json)
}

/// The same listing under the original API's name.
#[utoipa::path(
    get,
    path = "/all-messages",
    params(Page),
    responses(
        (status = 200, description = "A page of digests", body = DigestList),
        (status = 400, description = "Bad limit or cursor", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = ProblemDocument, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = []))
)]
async fn list_all_messages(
    state: State<AppState>,
    page: Query<Page>,
) -> Result<Json<DigestList>, MessagesError> {
    list_messages(state, page).await
}

async fn list(state: &AppState, page: Page) -> Result<DigestList, MessagesError> {
    let limit = page.limit.unwrap_or(100.min(state.max_page));
    if limit == 0 || limit > state.max_page {
        return Err(MessagesError::Limit {
            got: limit,
            max: state.max_page,
        });
    }
    let after = page
        .cursor
        .as_deref()
        .map(ListingKey::parse_cursor)
        .transpose()?;
    let after = match &after {
        Some(cursor) => cursor.stored(),
        None => LISTING_PREFIX.to_owned(),
    };
    let scanned = state.store.scan(Some(&after), limit).await?;
    // Nothing sorts after the listing entries, but a key that is not one ends the listing.
    let listed: Vec<ListingKey> = scanned
        .entries
        .iter()
        .map_while(|(key, _)| ListingKey::from_stored(key))
        .collect();
    let next = scanned
        .next
        .as_deref()
        .filter(|_| listed.len() == scanned.entries.len())
        .and_then(ListingKey::from_stored)
        .map(|key| key.as_str().to_owned());
    Ok(DigestList {
        digest_list: listed.iter().map(|key| key.digest().to_owned()).collect(),
        next,
    })
}

async fn empty_digest() -> MessagesError {
    MessagesError::Invalid(crate::domain::ValidationError::Digest(
        "0 characters".to_owned(),
    ))
}

/// The OpenAPI document served at `GET /openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "messages", description = "A durable content-addressed message store."),
    paths(post_message, get_message, list_messages, list_all_messages),
    components(schemas(NewMessage, Stored, Message, DigestList, ProblemDocument)),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;
