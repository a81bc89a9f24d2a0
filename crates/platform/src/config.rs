//! Layered configuration: built-in defaults < TOML file (`--config`) < `<SVC>__SECTION__KEY`
//! environment variables, loaded once at start into typed sections.
//!
//! Invariant: this is the only module that reads the process environment
//! ([`Source::from_process`]); everything else receives a [`Settings`] value. Tests build a
//! [`Source`] by hand, so they never set environment variables.
//!
//! Unknown keys are errors that name the key, at every level: each section denies unknown
//! fields, and [`load`] checks the top-level section names itself.
//!
//! - `schema`: the sections and their defaults ([`Settings`]);
//! - `loading`: the sources and the layering ([`Source`], [`load`], [`render`]);
//! - `secrets`: values that print as `***` ([`Secret`], [`SecretUrl`]);
//! - [`list`]: arrays written as TOML arrays or comma-separated in the environment.

pub mod list;
mod loading;
mod schema;
mod secrets;

pub use loading::{ConfigError, Loaded, Source, load, render};
pub use schema::{
    AdminSettings, BrokerSettings, HealthSettings, LogFormat, NoServiceSettings, RateLimitSettings,
    ServerSettings, Settings, ShutdownSettings, StorageSettings, TelemetrySettings, TlsSettings,
};
pub use secrets::{Secret, SecretUrl};

#[cfg(test)]
mod tests;
