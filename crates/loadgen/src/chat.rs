//! chat's load generator, behind the `chatload` binary: an open-loop load for chat's WebSocket
//! fan-out.
//!
//! It joins rooms through the real protocol, publishes on a fixed schedule whatever the replies
//! (so slow answers cannot hide latency), stamps each payload with its scheduled send time, and
//! checks every receiver for gaps and duplicates.
//!
//! - `client`: the protocol; `schedule`: when to send; `payload` and `clock`: the stamp;
//! - `accounting`: sequence checks and latencies;
//! - `fanout` and `idle`: the scenarios; `servers`: spawning servers, their CPU and RSS;
//! - `report`, `bench` (the ladder into BENCHMARKS.md) and `soak` (one server at a fixed rate,
//!   watching its memory).

pub mod accounting;
pub mod bench;
pub mod client;
pub mod clock;
pub mod fanout;
pub mod idle;
pub mod payload;
pub mod report;
pub mod schedule;
pub mod servers;
pub mod soak;
