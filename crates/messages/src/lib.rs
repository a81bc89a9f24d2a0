//! messages: a durable content-addressed message store over TLS. `POST /messages` stores a
//! message under the SHA-256 of its text; `GET /messages/<digest>` gives it back.
//!
//! Storage is the platform's key–value trait, one namespace `messages` holding the records and
//! the first-insertion order (see [`domain::LISTING_PREFIX`]), so every backend serves it and a
//! new message is one atomic write. TLS is on by default, with a generated self-signed
//! certificate when none is configured.

pub mod auth;
pub mod domain;
pub mod error;
pub mod routes;
pub mod slo;

use std::sync::Arc;

use bytesize::ByteSize;
use platform::config::Secret;
use platform::storage::{BatchWrite, KeyValue, StorageError};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

/// messages' own sections: `[messages]` and `[auth]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MessagesSettings {
    /// `[messages]`.
    #[serde(default)]
    pub messages: StoreSettings,
    /// `[auth]`.
    #[serde(default)]
    pub auth: AuthSettings,
}

/// `[messages]`: limits of the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Longest message in UTF-8 bytes; above it a POST gets a 413 problem. Default `64KiB`.
    pub max_bytes: ByteSize,
    /// Largest `limit` of a listing page. Default 1000.
    pub max_page: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            max_bytes: ByteSize::kib(64),
            max_page: 1000,
        }
    }
}

/// `[auth]`: optional bearer tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Accepted bearer tokens; when any is set, every `/messages` route needs one. In the
    /// environment a comma-separated list (`MESSAGES__AUTH__TOKENS`). Default: none.
    #[serde(deserialize_with = "platform::config::list::deserialize")]
    pub tokens: Vec<Secret>,
}

/// The service: TLS on by default, and a body limit that fits the largest message even when
/// every byte of it is JSON-escaped (`\u0000` is six bytes for one).
pub fn service() -> platform::Service<MessagesSettings> {
    platform::Service::new(
        "messages",
        env!("CARGO_PKG_VERSION"),
        8082,
        |context: platform::Context<MessagesSettings>| async move {
            let settings = context.service_settings();
            let store = context.key_value("messages").await?;
            if context.migrates() {
                let legacy = context.key_value(LEGACY_LISTING_NAMESPACE).await?;
                move_legacy_listing(legacy.as_ref(), store.as_ref()).await?;
            }
            metrics::describe_counter!(
                routes::STORED_TOTAL,
                "Messages stored for the first time (a repeated POST does not count)."
            );
            metrics::counter!(routes::STORED_TOTAL).increment(0);
            let state = routes::AppState {
                store,
                max_bytes: usize::try_from(settings.messages.max_bytes.as_u64())
                    .unwrap_or(usize::MAX),
                max_page: settings.messages.max_page.max(1),
                clock: Arc::new(domain::FirstSeenClock::default()),
            };
            let tokens = auth::Tokens::new(&settings.auth.tokens);
            if tokens.required() {
                tracing::info!(
                    tokens = settings.auth.tokens.len(),
                    "Bearer-token authentication is on."
                );
            }
            Ok(routes::router(state, tokens, context.rate_limiter().await?))
        },
    )
    .with_defaults(|settings| {
        settings.tls.enabled = true;
        settings.server.body_limit = ByteSize::kib(512);
    })
    .with_openapi(routes::ApiDoc::openapi)
    .with_index()
    .with_slos(slo::slos())
}

/// Where versions before one namespace kept the listing.
pub const LEGACY_LISTING_NAMESPACE: &str = "messages_listing";

/// Moves the entries of the listing's old namespace into the store beside the records, page by
/// page, each page in one atomic write that also deletes it from the old namespace, so a
/// migration cut short resumes where it stopped. Returns how many entries moved.
pub async fn move_legacy_listing(
    legacy: &dyn KeyValue,
    store: &dyn KeyValue,
) -> Result<usize, StorageError> {
    let mut moved = 0;
    loop {
        let page = legacy.scan(None, 500).await?;
        if page.entries.is_empty() {
            break;
        }
        let mut copies = Vec::with_capacity(page.entries.len());
        for (key, _) in &page.entries {
            if let Ok(listed) = domain::ListingKey::parse_cursor(key) {
                copies.push(BatchWrite::put(listed.stored(), Vec::new()));
            }
        }
        store.write_batch(&copies).await?;
        let removals: Vec<BatchWrite> = page
            .entries
            .iter()
            .map(|(key, _)| BatchWrite::delete(key.as_str()))
            .collect();
        legacy.write_batch(&removals).await?;
        moved += copies.len();
    }
    if moved > 0 {
        tracing::info!(moved, "Listing moved beside the records.");
    }
    Ok(moved)
}
