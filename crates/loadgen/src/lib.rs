//! loadgen: a load generator (closed loop for the benchmark, open loop at a fixed rate for the
//! soak) and the harness behind `BENCHMARKS.md`.
//!
//! One module per concern; a new service adds a file under `scenario/`, a variant of
//! `scenario::Service` and its targets in `bench`; a new protocol (WebSocket) adds a runner
//! beside `http`.

pub mod baseline;
pub mod bench;
pub mod charts;
pub mod chat;
pub mod cli;
pub mod cpu;
pub mod http;
pub mod memory;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod soak;
pub mod summary;
pub mod target;
pub mod tls;
