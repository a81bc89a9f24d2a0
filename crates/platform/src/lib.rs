//! The SRE platform every service embeds: a service declares its routes, storage shape and
//! settings; the platform runs it the same way as every other service.
//!
//! - [`clock`]: the injected wall clock services read "now" from.
//! - [`config`]: defaults < TOML file < `<SVC>__SECTION__KEY`; the only reader of the environment.
//! - [`run()`]: the shared command line (`serve`, `check-config`, `migrate`).
//! - [`service`]: what a service hands the platform ([`Service`], [`Context`]).
//! - [`server`]: binds the API and admin listeners, serves, drains.
//! - [`http`]: the stack (request id → trace → metrics → body limit → load shed → panic →
//!   timeout; problem, security headers and request id on the way out), [`Problem`] and the
//!   JSON extractor.
//! - [`admin`]: `/metrics`, `/livez`, `/readyz`, `/info` on their own listener.
//! - [`health`]: dependency checks, cached, behind `/readyz`; the readiness latch.
//! - [`metrics`]: recorder, canonical names, explicit buckets.
//! - [`telemetry`]: logs and OTLP traces.
//! - [`shutdown`][mod@shutdown]: SIGTERM/SIGINT handlers.
//! - [`slo`]: SLOs declared in code, and what is generated from them.
//! - [`storage`]: the storage traits and their backends.
//! - [`tls`]: certificates (configured or self-signed) and the rustls configuration.
//! - `testing` (feature `testing`): `TestApp` for services' tests.

pub mod admin;
pub mod clock;
pub mod config;
pub mod health;
pub mod http;
pub mod metrics;
mod run;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod slo;
pub mod storage;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

pub use http::problem::Problem;
pub use run::run;
pub use service::{Context, Service, StartError};
