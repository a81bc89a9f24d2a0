//! The behaviour suites of the storage traits: one suite per trait, run against every backend
//! by `tests/backends`, and available to services' own tests with the `testing` feature.
//!
//! A behaviour is a plain `pub async fn name(store: &dyn Trait)` that panics when the store
//! breaks the contract, so one suite serves every backend.

pub mod kv;
pub mod log;
pub mod pubsub;

/// A fresh namespace (`t_` and 16 random hex digits), so runs never see each other's data.
pub fn unique_namespace() -> String {
    format!("t_{:016x}", rand::random::<u64>())
}
