//! The HTTP load runners, over plain TCP or, when the endpoint carries a TLS configuration, over
//! TLS: the closed loop (`closed_loop`, for the benchmark) and the open loop at a fixed rate
//! (`open_loop`, for the soak), both driving the one client in `client`.

pub mod client;
pub mod closed_loop;
pub mod open_loop;

pub use client::{Endpoint, Reply, RequestSpec};
pub use closed_loop::{Load, run};
pub use open_loop::{RateLoad, run_at_rate, slots_due};

#[cfg(test)]
mod tests;
