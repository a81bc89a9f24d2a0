//! The behaviour suite of [`Log`]: what every backend must do, one function per rule.
//!
//! Each behaviour uses streams of its own, so a run needs a log of a fresh namespace, opened
//! with a retention of at least [`MIN_RETAIN`]; [`run_all`] is told the retention it was
//! opened with.

use std::collections::BTreeMap;

use crate::storage::StorageError;
use crate::storage::log::{Log, LogEntry};

/// The smallest retention the suite can check its reads with.
pub const MIN_RETAIN: usize = 20;

/// Runs every single-instance behaviour below against `log`, opened with `retain`.
pub async fn run_all(log: &dyn Log, retain: usize) {
    assert!(
        retain >= MIN_RETAIN,
        "the suite needs a retention of at least {MIN_RETAIN}"
    );
    numbering_starts_at_one(log).await;
    numbers_are_consecutive_across_batches(log).await;
    empty_append_returns_next_number(log).await;
    read_after_is_ascending_and_limited(log).await;
    read_last_is_newest_in_ascending_order(log).await;
    unknown_stream_reads_empty(log).await;
    retention_keeps_the_last_entries(log, retain).await;
    batch_larger_than_retention_keeps_its_tail(log, retain).await;
    streams_are_independent(log).await;
    concurrent_appends_get_distinct_consecutive_numbers(&[log; 2], "concurrent-one").await;
    invalid_stream_names_are_refused(log).await;
    longest_and_punctuated_stream_names_work(log).await;
    large_entry_round_trips(log).await;
    binary_entries_round_trip(log).await;
    ping_succeeds(log).await;
}

/// The first entry of a stream is number 1, and the next append continues at 2.
pub async fn numbering_starts_at_one(log: &dyn Log) {
    assert_eq!(ok(log.append("first", &[b"a".to_vec()]).await, "append"), 1);
    assert_eq!(
        ok(
            log.append("first", &[b"b".to_vec(), b"c".to_vec()]).await,
            "append"
        ),
        2
    );
    let read = ok(log.read_after("first", 0, 10).await, "read_after");
    assert_eq!(read, entries(1, &["a", "b", "c"]));
}

/// Batches of different sizes get consecutive numbers: each append returns the first of its
/// batch, and reading returns them all, in order, without gaps.
pub async fn numbers_are_consecutive_across_batches(log: &dyn Log) {
    let mut next = 1;
    for size in [1usize, 3, 2, 5, 1] {
        let batch: Vec<Vec<u8>> = (0..size)
            .map(|i| format!("{next}+{i}").into_bytes())
            .collect();
        assert_eq!(ok(log.append("batches", &batch).await, "append"), next);
        next += size as u64;
    }
    let read = ok(log.read_after("batches", 0, 100).await, "read_after");
    let numbers: Vec<u64> = read.iter().map(|entry| entry.seq).collect();
    assert_eq!(numbers, (1..next).collect::<Vec<_>>());
    assert_eq!(read[1].data, b"2+0");
    assert_eq!(read[3].data, b"2+2");
}

/// An empty append stores nothing and returns the number the next entry will get.
pub async fn empty_append_returns_next_number(log: &dyn Log) {
    assert_eq!(
        ok(
            log.append("empty", &[]).await,
            "empty append on a new stream"
        ),
        1
    );
    assert!(ok(log.read_last("empty", 10).await, "read_last").is_empty());
    ok(
        log.append("empty", &[b"x".to_vec(), b"y".to_vec()]).await,
        "append",
    );
    assert_eq!(ok(log.append("empty", &[]).await, "empty append"), 3);
    assert_eq!(
        ok(log.append("empty", &[b"z".to_vec()]).await, "append after"),
        3
    );
}

/// `read_after` returns entries strictly after the given number, ascending, at most `limit`.
pub async fn read_after_is_ascending_and_limited(log: &dyn Log) {
    let data: Vec<String> = (1..=10).map(|n| format!("e{n}")).collect();
    append_all(log, "after", &data).await;
    let page = ok(log.read_after("after", 3, 4).await, "read_after 3");
    assert_eq!(page, entries(4, &["e4", "e5", "e6", "e7"]));
    let tail = ok(log.read_after("after", 8, 100).await, "read_after 8");
    assert_eq!(tail, entries(9, &["e9", "e10"]));
    assert!(ok(log.read_after("after", 10, 5).await, "read_after the last").is_empty());
    assert!(
        ok(
            log.read_after("after", 1_000, 5).await,
            "read_after the future"
        )
        .is_empty()
    );
    assert!(
        ok(
            log.read_after("after", u64::MAX, 5).await,
            "read_after u64::MAX"
        )
        .is_empty()
    );
    assert!(ok(log.read_after("after", 0, 0).await, "limit 0").is_empty());
}

/// `read_last` returns the newest `limit` entries, oldest first.
pub async fn read_last_is_newest_in_ascending_order(log: &dyn Log) {
    let data: Vec<String> = (1..=10).map(|n| format!("l{n}")).collect();
    append_all(log, "last", &data).await;
    let newest = ok(log.read_last("last", 3).await, "read_last 3");
    assert_eq!(newest, entries(8, &["l8", "l9", "l10"]));
    let all = ok(log.read_last("last", 100).await, "read_last 100");
    assert_eq!(all.len(), 10);
    assert_eq!(all.first().map(|entry| entry.seq), Some(1));
    assert!(ok(log.read_last("last", 0).await, "limit 0").is_empty());
}

/// Reading a stream never appended to returns nothing.
pub async fn unknown_stream_reads_empty(log: &dyn Log) {
    assert!(ok(log.read_after("never", 0, 10).await, "read_after").is_empty());
    assert!(ok(log.read_last("never", 10).await, "read_last").is_empty());
}

/// After `retain + 7` appends only the last `retain` remain: `read_after(0)` starts at the
/// oldest retained, and numbering goes on where it was.
pub async fn retention_keeps_the_last_entries(log: &dyn Log, retain: usize) {
    let total = retain + 7;
    let data: Vec<String> = (1..=total).map(|n| format!("r{n}")).collect();
    // Single appends and batches both trim.
    for chunk in data.chunks(3) {
        let batch: Vec<Vec<u8>> = chunk.iter().map(|d| d.clone().into_bytes()).collect();
        ok(log.append("retained", &batch).await, "append");
    }
    let kept = ok(
        log.read_after("retained", 0, total * 2).await,
        "read_after 0",
    );
    let expected: Vec<&str> = data[7..].iter().map(String::as_str).collect();
    assert_eq!(kept, entries(8, &expected), "read_after(0) after retention");
    let old = ok(
        log.read_after("retained", 2, 3).await,
        "read_after an expired number",
    );
    assert_eq!(old.first().map(|entry| entry.seq), Some(8));
    let last = ok(
        log.read_last("retained", total * 2).await,
        "read_last beyond retention",
    );
    assert_eq!(last, kept, "read_last returns only retained entries");

    let next = total as u64 + 1;
    assert_eq!(
        ok(log.append("retained", &[b"more".to_vec()]).await, "append"),
        next
    );
    let kept = ok(
        log.read_after("retained", 0, total * 2).await,
        "read_after 0 again",
    );
    assert_eq!(kept.len(), retain);
    assert_eq!(kept.first().map(|entry| entry.seq), Some(9));
    assert_eq!(kept.last().map(|entry| entry.seq), Some(next));
}

/// One batch longer than the retention is numbered in full, and only its tail is kept.
pub async fn batch_larger_than_retention_keeps_its_tail(log: &dyn Log, retain: usize) {
    let batch: Vec<Vec<u8>> = (1..=retain + 3)
        .map(|n| format!("b{n}").into_bytes())
        .collect();
    assert_eq!(ok(log.append("big-batch", &batch).await, "append"), 1);
    let kept = ok(
        log.read_after("big-batch", 0, retain * 2).await,
        "read_after 0",
    );
    assert_eq!(kept.len(), retain);
    assert_eq!(kept.first().map(|entry| entry.seq), Some(4));
    assert_eq!(
        kept.first().map(|entry| entry.data.clone()),
        Some(b"b4".to_vec())
    );
    let next = ok(log.append("big-batch", &[]).await, "empty append");
    assert_eq!(next, retain as u64 + 4);
}

/// Streams have their own numbering and their own entries.
pub async fn streams_are_independent(log: &dyn Log) {
    assert_eq!(
        ok(log.append("room-a", &[b"a1".to_vec()]).await, "append a"),
        1
    );
    assert_eq!(
        ok(log.append("room-b", &[b"b1".to_vec()]).await, "append b"),
        1
    );
    assert_eq!(
        ok(log.append("room-a", &[b"a2".to_vec()]).await, "append a"),
        2
    );
    assert_eq!(
        ok(log.read_after("room-a", 0, 10).await, "read a"),
        entries(1, &["a1", "a2"])
    );
    assert_eq!(
        ok(log.read_after("room-b", 0, 10).await, "read b"),
        entries(1, &["b1"])
    );
}

/// Many concurrent appends, spread over `logs` (several handles on one log, or instances that
/// stand for separate processes), get distinct consecutive numbers with no gap, and each
/// number holds what its append wrote.
pub async fn concurrent_appends_get_distinct_consecutive_numbers(logs: &[&dyn Log], stream: &str) {
    const WRITERS: usize = 12;
    const APPENDS: usize = 5;
    let writers = (0..WRITERS).map(|writer| async move {
        let log = logs[writer % logs.len()];
        let mut written = Vec::new();
        for append in 0..APPENDS {
            let batch: Vec<Vec<u8>> = (0..1 + append % 3)
                .map(|i| format!("w{writer}-a{append}-{i}").into_bytes())
                .collect();
            let first = ok(log.append(stream, &batch).await, "concurrent append");
            written.extend((first..).zip(batch));
        }
        written
    });
    let mut by_number = BTreeMap::new();
    for (seq, data) in futures::future::join_all(writers)
        .await
        .into_iter()
        .flatten()
    {
        assert!(
            by_number.insert(seq, data).is_none(),
            "number {seq} was given twice"
        );
    }
    let numbers: Vec<u64> = by_number.keys().copied().collect();
    let total = numbers.len() as u64;
    assert_eq!(
        numbers,
        (1..=total).collect::<Vec<_>>(),
        "numbers have gaps"
    );
    for log in logs {
        let tail = ok(log.read_last(stream, MIN_RETAIN).await, "read_last");
        assert_eq!(tail.len(), MIN_RETAIN);
        for entry in tail {
            assert_eq!(
                Some(&entry.data),
                by_number.get(&entry.seq),
                "entry {}",
                entry.seq
            );
        }
    }
}

/// Stream names outside 1 to 128 of `[A-Za-z0-9_.:-]` are refused by every operation.
pub async fn invalid_stream_names_are_refused(log: &dyn Log) {
    let too_long = "s".repeat(129);
    for name in [
        "",
        "with space",
        "a/b",
        "ünï",
        "new\nline",
        "{tag}",
        "*",
        too_long.as_str(),
    ] {
        let refused = |result: Result<(), StorageError>, what: &str| match result {
            Err(StorageError::Backend(_)) => {}
            other => panic!("{what} of stream {name:?} gave {other:?}"),
        };
        refused(log.append(name, &[b"x".to_vec()]).await.map(drop), "append");
        refused(log.read_after(name, 0, 1).await.map(drop), "read_after");
        refused(log.read_last(name, 1).await.map(drop), "read_last");
    }
}

/// A 128-byte name and one using every allowed punctuation mark work.
pub async fn longest_and_punctuated_stream_names_work(log: &dyn Log) {
    let longest = "L".repeat(128);
    for name in [longest.as_str(), "room:42.general_chat-1"] {
        assert_eq!(ok(log.append(name, &[b"ok".to_vec()]).await, "append"), 1);
        assert_eq!(
            ok(log.read_last(name, 1).await, "read_last"),
            entries(1, &["ok"])
        );
    }
}

/// A 64 KiB entry round-trips unchanged.
pub async fn large_entry_round_trips(log: &dyn Log) {
    let large: Vec<u8> = (0..64 * 1024u32)
        .map(|n| (n.wrapping_mul(31) % 251) as u8)
        .collect();
    ok(
        log.append("large", &[large.clone(), b"after".to_vec()])
            .await,
        "append",
    );
    let read = ok(log.read_after("large", 0, 10).await, "read_after");
    assert_eq!(read.len(), 2);
    assert!(read[0].data == large, "the 64 KiB entry came back changed");
}

/// Every byte value, and an empty entry, round-trip unchanged.
pub async fn binary_entries_round_trip(log: &dyn Log) {
    let all_bytes: Vec<u8> = (0..=u8::MAX).collect();
    let batch = vec![all_bytes.clone(), Vec::new(), vec![0, 0, 0]];
    ok(log.append("binary", &batch).await, "append");
    let read = ok(log.read_after("binary", 0, 10).await, "read_after");
    let data: Vec<Vec<u8>> = read.into_iter().map(|entry| entry.data).collect();
    assert_eq!(data, batch);
}

/// `ping` succeeds against a healthy backend.
pub async fn ping_succeeds(log: &dyn Log) {
    ok(log.ping().await, "ping");
}

async fn append_all(log: &dyn Log, stream: &str, data: &[String]) {
    for entry in data {
        ok(
            log.append(stream, &[entry.clone().into_bytes()]).await,
            "append",
        );
    }
}

/// Entries numbered from `first` holding `data`.
fn entries(first: u64, data: &[&str]) -> Vec<LogEntry> {
    (first..)
        .zip(data)
        .map(|(seq, data)| LogEntry {
            seq,
            data: data.as_bytes().to_vec(),
        })
        .collect()
}

fn ok<T>(result: Result<T, StorageError>, what: &str) -> T {
    result.unwrap_or_else(|error| panic!("{what} failed: {error} ({error:?})"))
}
