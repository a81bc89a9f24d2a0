//! The process-wide time base that payload stamps count from.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static BASE: OnceLock<Instant> = OnceLock::new();

fn base() -> Instant {
    *BASE.get_or_init(Instant::now)
}

/// Nanoseconds since the base.
pub fn now_ns() -> u64 {
    base().elapsed().as_nanos() as u64
}

/// The instant `ns` nanoseconds after the base.
pub fn instant_at(ns: u64) -> tokio::time::Instant {
    (base() + Duration::from_nanos(ns)).into()
}
