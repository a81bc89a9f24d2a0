//! notes' HTTP test suite: one binary, one module per concern. Every request goes through a real
//! socket to the service on a random port; each "browser" is a client with its own cookie jar.
//! The Notejam cases run on SQLite, PostgreSQL and MySQL (`TEST_POSTGRES_URL`,
//! `TEST_MYSQL_URL`; skipped with a note when unset, failing under CI).

// A failed unwrap in a test helper is the test failing, loudly, where it happened.
#![allow(clippy::unwrap_used)]

mod api;
mod backend_restart;
mod bad_input;
mod cli;
mod durability;
mod helpers;
mod mail;
mod notes;
mod pads;
mod security;
mod slo;
mod users;
