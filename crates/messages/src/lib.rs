//! messages: a durable content-addressed message store over TLS. `POST /messages` stores a
//! message under the SHA-256 of its text; `GET /messages/<digest>` gives it back.
//!
//! Storage is the platform's key–value trait, one namespace `messages` holding the records and
//! the first-insertion order (see [`domain::LISTING_PREFIX`]), so every backend serves it and a
//! new message is one atomic write. TLS is on by default, with a generated self-signed
//! certificate when none is configured.

pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod metrics;
pub mod migration;
pub mod routes;
pub mod slo;
pub mod state;

use std::sync::Arc;

use bytesize::ByteSize;
use platform::clock::WallClock;
use utoipa::OpenApi;

pub use config::MessagesSettings;
pub use migration::LEGACY_LISTING_NAMESPACE;

/// The service with the system clock.
pub fn service() -> platform::Service<MessagesSettings> {
    service_with_clock(WallClock::system())
}

/// The service with an injected clock, which stamps new messages: TLS on by default, and a
/// body limit that fits the largest message even when every byte of it is JSON-escaped
/// (`\u0000` is six bytes for one).
pub fn service_with_clock(clock: WallClock) -> platform::Service<MessagesSettings> {
    platform::Service::new(
        "messages",
        env!("CARGO_PKG_VERSION"),
        8082,
        move |context: platform::Context<MessagesSettings>| {
            let clock = clock.clone();
            async move {
                let settings = context.service_settings();
                let store = context.key_value("messages").await?;
                if context.migrates() {
                    let legacy = context
                        .key_value(migration::LEGACY_LISTING_NAMESPACE)
                        .await?;
                    migration::move_legacy_listing(legacy.as_ref(), store.as_ref()).await?;
                }
                metrics::describe();
                let state = state::AppState {
                    store,
                    max_bytes: usize::try_from(settings.messages.max_bytes.as_u64())
                        .unwrap_or(usize::MAX),
                    max_page: settings.messages.max_page.max(1),
                    clock: Arc::new(domain::FirstSeenClock::new(clock.clone())),
                };
                let tokens = auth::Tokens::new(&settings.auth.tokens);
                if tokens.required() {
                    tracing::info!(
                        tokens = settings.auth.tokens.len(),
                        "Bearer-token authentication is on."
                    );
                }
                Ok(routes::router(state, tokens, context.rate_limiter().await?))
            }
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
