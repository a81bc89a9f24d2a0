//! messages' HTTP test suite: one binary, one module per concern. Every request goes over
//! HTTPS to the service on a random port, its client trusting only the generated certificate.

// A failed unwrap in a test helper is the test failing, loudly, where it happened.
#![allow(clippy::unwrap_used)]

mod auth;
mod backend_restart;
mod bad_input;
mod cli;
mod durability;
mod faults;
mod helpers;
mod ratelimit;
mod slo;
mod store;
mod tls;
