//! chat's test suite: the protocol over real WebSockets against the service on a random port,
//! the pages, and several replicas as real processes sharing a broker.

// A failed unwrap in a test helper is the test failing, loudly, where it happened.
#![allow(clippy::unwrap_used)]

mod backend_restart;
mod fuzz;
mod helpers;
mod limits;
mod pages;
mod protocol;
mod replicas;
mod resume;
mod slo;
