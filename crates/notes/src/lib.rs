//! notes: Notejam — users, pads and notes as server-rendered HTML pages, with a JSON API under
//! `/api/v1` beside them.
//!
//! Storage is a relational schema of its own ([`storage::NotesRepository`]) on the platform's SQL
//! pool: SQLite by default, PostgreSQL or MySQL/MariaDB by `storage.url`.
//!
//! - `config.rs`: the `[notes]`, `[signin]` and `[mail]` sections.
//! - `state.rs`: `AppState`, what every handler shares, with the clock.
//! - `routes.rs`: every path and its handler.
//! - `pages.rs` + `pages/`: the HTML pages (accounts, notes, pads); `templates.rs` renders them.
//! - `api.rs`: the JSON API's handlers, its documents and its OpenAPI document.
//! - `session.rs`: the cookie session, CSRF and flash middleware in front of the pages.
//! - `users.rs`: password hashing within a memory budget, tokens, sign-in limits.
//! - `mail.rs`: password-reset mail.
//! - `domain.rs`: field rules, note order, "Last modified", safe redirects.
//! - `error.rs`: `NotesError` and its mapping to a problem.
//! - `metrics.rs`: notes' metric names and recorders. `slo.rs`: its SLOs.
//! - `storage.rs` + `storage/`: the repository trait and one implementation per SQL dialect.

pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod mail;
pub mod metrics;
pub mod pages;
pub mod routes;
pub mod session;
pub mod slo;
pub mod state;
pub mod storage;
pub mod templates;
pub mod users;

use platform::clock::WallClock;
use utoipa::OpenApi;

/// The service: pages, the JSON API and the stylesheet on port 8083, on the system clock.
pub fn service() -> platform::Service<config::NotesSettings> {
    service_with_clock(WallClock::system())
}

/// The service reading "now" from `clock`, so a test can pin the times it stores and shows.
pub fn service_with_clock(clock: WallClock) -> platform::Service<config::NotesSettings> {
    platform::Service::new(
        "notes",
        env!("CARGO_PKG_VERSION"),
        8083,
        move |context: platform::Context<config::NotesSettings>| {
            let clock = clock.clone();
            async move {
                let database = context.sql_pool("notes", &storage::MIGRATIONS).await?;
                let state = state::AppState::new(
                    &context.service_settings(),
                    context.settings(),
                    storage::repository(database),
                    clock,
                )
                .map_err(platform::StartError::Service)?;
                crate::metrics::describe();
                Ok(routes::router(state))
            }
        },
    )
    .with_openapi(api::ApiDoc::openapi)
    .with_slos(slo::slos())
}
