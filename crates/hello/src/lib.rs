//! hello: the birthday API. `PUT /hello/<username>` stores a date of birth; `GET` greets the
//! user with the days until their next birthday.
//!
//! Storage is the platform's key–value trait (namespace `hello`), so every backend serves it.

pub mod domain;
pub mod error;
pub mod routes;
pub mod slo;
pub mod state;

use platform::clock::WallClock;
use utoipa::OpenApi;

/// The service with the system clock.
pub fn service() -> platform::Service {
    service_with_clock(WallClock::system())
}

/// The service with an injected clock, so tests pin "today".
pub fn service_with_clock(clock: WallClock) -> platform::Service {
    platform::Service::new("hello", env!("CARGO_PKG_VERSION"), 8081, move |context| {
        let clock = clock.clone();
        async move {
            let store = context.key_value("hello").await?;
            Ok(routes::router(state::AppState { store, clock }))
        }
    })
    .with_openapi(routes::ApiDoc::openapi)
    .with_index()
    .with_slos(slo::slos())
}
