//! Request ids for requests that arrive without an `x-request-id`: UUID-shaped (version 4,
//! RFC 9562 variant), unique within the process by construction and across processes with
//! overwhelming probability, at the cost of an atomic increment and no system call.
//!
//! A UUID v4 from the operating system's random source per request (what `tower-http`'s
//! `MakeRequestUuid` does) is a `getrandom` system call on every request. An id only has to be
//! unique, not secret: this one is a 64-bit random key drawn once per process, and a per-process
//! counter passed through a bijective mix keyed by another random draw, so consecutive ids do
//! not show the request rate and no two requests of one process share an id until the counter
//! wraps after 2^64 requests.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderValue;
use bytes::Bytes;

/// Makes the ids of one process (one per server, shared by every route).
#[derive(Debug)]
pub(crate) struct RequestIds {
    /// High 64 bits of every id: drawn once, so ids of two processes differ with probability
    /// 1 − 2^-58 (after the version and variant bits) per pair of processes.
    prefix: u64,
    /// Mixed into the counter before the bijection, so the sequence differs per process too.
    key: u64,
    counter: AtomicU64,
}

impl RequestIds {
    /// A generator with fresh random keys.
    pub(crate) fn new() -> RequestIds {
        RequestIds {
            prefix: rand::random(),
            key: rand::random(),
            counter: AtomicU64::new(0),
        }
    }

    /// The next id, as a header value (36 characters, `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
    pub(crate) fn next(&self) -> HeaderValue {
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        let low = mix(count ^ self.key);
        let mut value = (u128::from(self.prefix) << 64) | u128::from(low);
        // Version 4 and the RFC 9562 variant, so the id parses as the UUID it looks like.
        value = (value & !(0xf << 76)) | (0x4 << 76);
        value = (value & !(0x3 << 62)) | (0x2 << 62);
        let text = format_uuid(value);
        // A shared `Bytes` rather than a copied one: the id is cloned into the response, and a
        // clone of shared bytes is a reference count, not a second allocation.
        HeaderValue::from_maybe_shared(Bytes::from_owner(text))
            .unwrap_or_else(|_| HeaderValue::from_static("00000000-0000-4000-8000-000000000000"))
    }
}

/// SplitMix64's finaliser: a bijection on `u64` (each step is invertible), so distinct counters
/// give distinct outputs.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn format_uuid(value: u128) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = value.to_be_bytes();
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (index, byte) in bytes.iter().enumerate() {
        // Dashes after the 4th, 6th, 8th and 10th bytes: 8-4-4-4-12 hex digits.
        if matches!(index, 4 | 6 | 8 | 10) {
            at += 1;
        }
        text[at] = HEX[usize::from(byte >> 4)];
        text[at + 1] = HEX[usize::from(byte & 0xf)];
        at += 2;
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn ids_are_uuid_v4_shaped() {
        let ids = RequestIds::new();
        for _ in 0..1000 {
            let id = ids.next();
            let text = id.to_str().unwrap();
            let parsed = uuid::Uuid::parse_str(text).unwrap();
            assert_eq!(parsed.get_version_num(), 4, "{text}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{text}");
            assert_eq!(text, text.to_lowercase());
        }
    }

    #[test]
    fn ids_of_one_process_never_repeat() {
        let ids = RequestIds::new();
        let seen: HashSet<_> = (0..100_000).map(|_| ids.next()).collect();
        assert_eq!(seen.len(), 100_000);
    }

    #[test]
    fn the_mix_is_a_bijection_on_a_sample() {
        // Distinct inputs, including the ones a wrapping counter meets, give distinct outputs.
        let inputs = (0..50_000u64).chain((0..50_000u64).map(|i| u64::MAX - i));
        let outputs: HashSet<_> = inputs.map(mix).collect();
        assert_eq!(outputs.len(), 100_000);
    }

    #[test]
    fn two_generators_do_not_share_ids() {
        let (first, second) = (RequestIds::new(), RequestIds::new());
        let firsts: HashSet<_> = (0..1000).map(|_| first.next()).collect();
        assert!((0..1000).all(|_| !firsts.contains(&second.next())));
    }

    #[test]
    fn consecutive_ids_do_not_count_up() {
        let ids = RequestIds::new();
        let (a, b) = (ids.next(), ids.next());
        let tail = |id: &HeaderValue| id.to_str().unwrap()[24..].to_owned();
        assert_ne!(tail(&a), tail(&b));
        // More than the last few digits differ: the counter is mixed, not appended.
        let differing = tail(&a)
            .chars()
            .zip(tail(&b).chars())
            .filter(|(x, y)| x != y)
            .count();
        assert!(differing > 3, "{a:?} {b:?}");
    }
}
