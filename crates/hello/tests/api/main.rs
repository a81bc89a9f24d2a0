//! hello's HTTP test suite: one binary (zero2prod style), one module per concern.

// A failed unwrap in a test helper is the test failing, loudly, where it happened.
#![allow(clippy::unwrap_used)]

mod backend_restart;
mod birthdays;
mod cli;
mod durability;
mod faults;
mod helpers;
mod slo;
mod slo_views;
mod stack;
