//! chat: an anonymous real-time chat over WebSockets, with rooms, history and resume, that
//! scales out across replicas through a broker.
//!
//! History lives in the platform's append-only log (`storage.url`), fan-out between replicas
//! goes through its publish/subscribe broker (`broker.url`). The modules:
//!
//! - `config`: the `[chat]` settings; `state`: what handlers share; `routes`: the router.
//! - `pages`: the HTML; `connection`: one WebSocket; `protocol`: its frames.
//! - `hub`: the rooms of this replica; `queue`: a member's send queue; `pacing`: when a room
//!   hands frames to its members.
//! - `domain`: room and display names, text cleaning.
//! - `metrics`: metric names and recording; `slo`: the service level objectives.

pub mod config;
pub mod connection;
pub mod domain;
pub mod hub;
pub mod metrics;
pub mod pacing;
pub mod pages;
pub mod protocol;
pub mod queue;
pub mod routes;
pub mod slo;
pub mod state;

use platform::clock::WallClock;

/// The service, on the system clock.
pub fn service() -> platform::Service<config::ChatSettings> {
    service_with_clock(WallClock::system())
}

/// The service on `clock`, which stamps accepted messages and times their fan-out, so a test
/// can pin it.
pub fn service_with_clock(clock: WallClock) -> platform::Service<config::ChatSettings> {
    platform::Service::new(
        "chat",
        env!("CARGO_PKG_VERSION"),
        8084,
        move |context: platform::Context<config::ChatSettings>| {
            let clock = clock.clone();
            async move {
                let settings = context.service_settings();
                let log = context.log("chat", settings.chat.history.max(1)).await?;
                let broker = context.pubsub("chat").await?;
                metrics::describe();
                let budgets = context.budgets().clone();
                let hub = hub::registry::Hub::new(log, broker, settings.clone(), budgets, clock);
                let state = state::AppState {
                    hub,
                    settings,
                    sessions: context.sessions().clone(),
                };
                Ok(routes::router(state))
            }
        },
    )
    .with_slos(slo::slos())
    .with_dashboard_metrics(slo::DASHBOARD_METRICS)
}
