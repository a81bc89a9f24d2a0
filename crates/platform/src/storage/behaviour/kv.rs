//! The behaviour suite of [`KeyValue`]: what every backend must do, one function per rule.
//!
//! Each behaviour expects a store of its own namespace. The scan behaviours empty the store
//! first, so the order in which behaviours run does not matter.

use rand::seq::SliceRandom;

use crate::storage::{BatchOutcome, BatchWrite, KeyValue, ScanPage, StorageError};

/// Where backends differ in what they can hold; the suite tests each up to its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest value the backend stores. 1 MiB by default; DynamoDB's items hold 400 KB.
    pub largest_value: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            largest_value: 1024 * 1024,
        }
    }
}

/// Runs every behaviour below against `store`, in turn, with the default [`Limits`].
pub async fn run_all(store: &dyn KeyValue) {
    run_all_within(store, Limits::default()).await;
}

/// Runs every behaviour below against `store`, in turn, within `limits`.
pub async fn run_all_within(store: &dyn KeyValue, limits: Limits) {
    get_missing_is_none(store).await;
    put_then_get_returns_value(store).await;
    put_overwrites(store).await;
    put_if_absent_stores_once(store).await;
    delete_reports_whether_key_existed(store).await;
    binary_values_round_trip(store).await;
    unicode_keys_round_trip_case_sensitively(store).await;
    scan_pages_in_byte_order(store).await;
    scan_after_cursor_that_is_not_a_key(store).await;
    concurrent_put_if_absent_has_one_winner(store).await;
    large_value_round_trips(store, limits.largest_value).await;
    batch_applies_every_write(store).await;
    batch_with_a_conflicting_insert_writes_nothing(store).await;
    batch_inserts_see_the_earlier_writes_of_their_batch(store).await;
    readers_never_see_half_a_batch(store).await;
    ping_succeeds(store).await;
}

/// `get` of a key never written is `None`.
pub async fn get_missing_is_none(store: &dyn KeyValue) {
    assert_eq!(ok(store.get("missing/never-written").await, "get"), None);
}

/// `put` then `get` returns the value written.
pub async fn put_then_get_returns_value(store: &dyn KeyValue) {
    ok(store.put("put/key", b"value").await, "put");
    assert_eq!(
        ok(store.get("put/key").await, "get"),
        Some(b"value".to_vec())
    );
}

/// A second `put` replaces the value.
pub async fn put_overwrites(store: &dyn KeyValue) {
    ok(store.put("overwrite/key", b"first").await, "first put");
    ok(
        store.put("overwrite/key", b"second, longer").await,
        "second put",
    );
    assert_eq!(
        ok(store.get("overwrite/key").await, "get"),
        Some(b"second, longer".to_vec())
    );
}

/// `put_if_absent` stores only the first value and reports which call stored it.
pub async fn put_if_absent_stores_once(store: &dyn KeyValue) {
    assert!(ok(
        store.put_if_absent("once/key", b"first").await,
        "first put_if_absent"
    ));
    assert!(!ok(
        store.put_if_absent("once/key", b"second").await,
        "second put_if_absent"
    ));
    assert_eq!(
        ok(store.get("once/key").await, "get"),
        Some(b"first".to_vec())
    );
}

/// Deleting an existing key returns `true` and removes it; a second delete returns `false`.
pub async fn delete_reports_whether_key_existed(store: &dyn KeyValue) {
    ok(store.put("delete/key", b"value").await, "put");
    assert!(ok(store.delete("delete/key").await, "first delete"));
    assert_eq!(ok(store.get("delete/key").await, "get after delete"), None);
    assert!(!ok(store.delete("delete/key").await, "second delete"));
    assert!(!ok(
        store.delete("delete/never-written").await,
        "delete of a missing key"
    ));
}

/// Every byte value, and the empty value, round-trips unchanged.
pub async fn binary_values_round_trip(store: &dyn KeyValue) {
    let all_bytes: Vec<u8> = (0..=u8::MAX).collect();
    ok(store.put("binary/all", &all_bytes).await, "put all bytes");
    assert_eq!(
        ok(store.get("binary/all").await, "get all bytes"),
        Some(all_bytes)
    );

    ok(store.put("binary/empty", b"").await, "put empty");
    assert_eq!(
        ok(store.get("binary/empty").await, "get empty"),
        Some(Vec::new())
    );
}

/// Non-ASCII keys round-trip, and keys differing only in case are distinct.
pub async fn unicode_keys_round_trip_case_sensitively(store: &dyn KeyValue) {
    for key in ["unicode/é", "unicode/中文", "unicode/😀", "unicode/ß"] {
        ok(store.put(key, key.as_bytes()).await, "put");
        assert_eq!(
            ok(store.get(key).await, "get"),
            Some(key.as_bytes().to_vec()),
            "key {key}"
        );
    }
    ok(store.put("case/a", b"lower").await, "put lower");
    ok(store.put("case/A", b"upper").await, "put upper");
    assert_eq!(
        ok(store.get("case/a").await, "get lower"),
        Some(b"lower".to_vec())
    );
    assert_eq!(
        ok(store.get("case/A").await, "get upper"),
        Some(b"upper".to_vec())
    );
    assert!(ok(store.delete("case/A").await, "delete upper"));
    assert_eq!(
        ok(store.get("case/a").await, "get lower after"),
        Some(b"lower".to_vec())
    );
}

/// `scan` walks every key once in byte order, `limit` at a time, and `next` is `Some` exactly
/// when more entries follow.
pub async fn scan_pages_in_byte_order(store: &dyn KeyValue) {
    clear(store).await;
    // Upper case before lower case, punctuation and multi-byte UTF-8 where bytes put them, and
    // the characters Redis gives meaning to in lexical ranges.
    let mut keys: Vec<String> = [
        "A", "B", "Z", "a", "b", "z", "a0", "a_", "a-", "aa", "ab", "é", "中", "😀", "0", "~", "-",
        "+", "[", "(", "k 1",
    ]
    .iter()
    .map(|key| (*key).to_owned())
    .collect();
    keys.extend((0..4).map(|n| format!("key{n:02}")));
    assert_eq!(keys.len(), 25);
    for key in shuffled(&keys) {
        ok(store.put(&key, value_of(&key).as_slice()).await, "put");
    }
    keys.sort();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = ok(store.scan(cursor.as_deref(), 7).await, "scan");
        assert!(
            page.entries.len() <= 7,
            "page of {} entries over a limit of 7",
            page.entries.len()
        );
        for (key, value) in &page.entries {
            assert_eq!(value, &value_of(key), "value of {key}");
        }
        seen.extend(page.entries.iter().map(|(key, _)| key.clone()));
        match page.next {
            Some(next) => {
                assert_eq!(
                    page.entries.len(),
                    7,
                    "a page followed by another must be full"
                );
                assert_eq!(
                    Some(&next),
                    page.entries.last().map(|(key, _)| key),
                    "cursor"
                );
                cursor = Some(next);
            }
            None => break,
        }
        assert!(seen.len() <= keys.len(), "scan repeats keys: {seen:?}");
    }
    assert_eq!(seen, keys, "scan must list every key once, in byte order");

    let whole = ok(
        store.scan(None, keys.len()).await,
        "scan of exactly all keys",
    );
    assert_eq!(whole.entries.len(), keys.len());
    assert_eq!(
        whole.next, None,
        "no page follows the one holding the last key"
    );
    let short = ok(
        store.scan(None, keys.len() - 1).await,
        "scan of all keys but one",
    );
    assert_eq!(
        short.next.as_deref(),
        keys.get(keys.len() - 2).map(String::as_str)
    );
    clear(store).await;
}

/// `scan` after a cursor that is not a stored key starts at the next key; a `limit` of 0 is
/// read as 1.
pub async fn scan_after_cursor_that_is_not_a_key(store: &dyn KeyValue) {
    clear(store).await;
    for key in ["a", "c", "e"] {
        ok(store.put(key, key.as_bytes()).await, "put");
    }
    let page = ok(store.scan(Some("b"), 10).await, "scan after b");
    assert_eq!(keys_of(&page), ["c", "e"]);
    assert_eq!(page.next, None);

    let page = ok(store.scan(Some("cc"), 10).await, "scan after cc");
    assert_eq!(keys_of(&page), ["e"]);

    let page = ok(store.scan(Some("e"), 10).await, "scan after the last key");
    assert_eq!(page, ScanPage::default());

    let page = ok(store.scan(None, 0).await, "scan with limit 0");
    assert_eq!(keys_of(&page), ["a"]);
    assert_eq!(page.next.as_deref(), Some("a"));
    clear(store).await;
}

/// Sixteen concurrent `put_if_absent` of one key: exactly one stores, and its value stays.
pub async fn concurrent_put_if_absent_has_one_winner(store: &dyn KeyValue) {
    let attempts = (0..16u8).map(|n| async move {
        let stored = ok(store.put_if_absent("race/key", &[n]).await, "put_if_absent");
        (n, stored)
    });
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<u8> = results
        .iter()
        .filter(|(_, stored)| *stored)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(ok(store.get("race/key").await, "get"), Some(winners));
}

/// A value of `size` bytes (1 MiB within the default [`Limits`]) round-trips unchanged.
pub async fn large_value_round_trips(store: &dyn KeyValue, size: usize) {
    let value: Vec<u8> = (0..size)
        .map(|n| (n.wrapping_mul(31) % 251) as u8)
        .collect();
    ok(store.put("large/key", &value).await, "put");
    let read = ok(store.get("large/key").await, "get");
    assert!(
        read.as_ref() == Some(&value),
        "the {size}-byte value came back changed"
    );
}

/// A batch of puts, an insert and a delete is applied whole.
pub async fn batch_applies_every_write(store: &dyn KeyValue) {
    ok(store.put("batch/old", b"old").await, "put");
    let outcome = ok(
        store
            .write_batch(&[
                BatchWrite::put("batch/a", b"a"),
                BatchWrite::insert("batch/b", b"b"),
                BatchWrite::delete("batch/old"),
                BatchWrite::delete("batch/never-written"),
                BatchWrite::put("batch/a", b"a again"),
            ])
            .await,
        "write_batch",
    );
    assert_eq!(outcome, BatchOutcome::Applied);
    assert_eq!(
        ok(store.get("batch/a").await, "get"),
        Some(b"a again".to_vec())
    );
    assert_eq!(ok(store.get("batch/b").await, "get"), Some(b"b".to_vec()));
    assert_eq!(ok(store.get("batch/old").await, "get"), None);
    let empty = ok(store.write_batch(&[]).await, "empty write_batch");
    assert_eq!(empty, BatchOutcome::Applied);
}

/// An insert whose key exists cancels the whole batch, the writes before it included.
pub async fn batch_with_a_conflicting_insert_writes_nothing(store: &dyn KeyValue) {
    ok(store.put("conflict/taken", b"first").await, "put");
    ok(store.put("conflict/kept", b"kept").await, "put");
    let outcome = ok(
        store
            .write_batch(&[
                BatchWrite::put("conflict/new", b"new"),
                BatchWrite::delete("conflict/kept"),
                BatchWrite::insert("conflict/taken", b"second"),
                BatchWrite::put("conflict/after", b"after"),
            ])
            .await,
        "write_batch",
    );
    assert_eq!(
        outcome,
        BatchOutcome::Conflict {
            key: "conflict/taken".to_owned()
        }
    );
    assert_eq!(ok(store.get("conflict/new").await, "get"), None);
    assert_eq!(ok(store.get("conflict/after").await, "get"), None);
    assert_eq!(
        ok(store.get("conflict/kept").await, "get"),
        Some(b"kept".to_vec())
    );
    assert_eq!(
        ok(store.get("conflict/taken").await, "get"),
        Some(b"first".to_vec())
    );
}

/// An insert is checked against the store as the batch's earlier writes leave it: after a put
/// of its key it conflicts, after a delete of its key it stores.
pub async fn batch_inserts_see_the_earlier_writes_of_their_batch(store: &dyn KeyValue) {
    let outcome = ok(
        store
            .write_batch(&[
                BatchWrite::put("sequence/k", b"put"),
                BatchWrite::insert("sequence/k", b"insert"),
            ])
            .await,
        "write_batch",
    );
    assert!(matches!(outcome, BatchOutcome::Conflict { .. }));
    assert_eq!(ok(store.get("sequence/k").await, "get"), None);

    ok(store.put("sequence/gone", b"old").await, "put");
    let outcome = ok(
        store
            .write_batch(&[
                BatchWrite::delete("sequence/gone"),
                BatchWrite::insert("sequence/gone", b"new"),
            ])
            .await,
        "write_batch",
    );
    assert_eq!(outcome, BatchOutcome::Applied);
    assert_eq!(
        ok(store.get("sequence/gone").await, "get"),
        Some(b"new".to_vec())
    );
}

/// While batches rewrite four keys to one generation after another, every scan (one read)
/// sees the four at the same generation.
pub async fn readers_never_see_half_a_batch(store: &dyn KeyValue) {
    const KEYS: [&str; 4] = ["atomic/0", "atomic/1", "atomic/2", "atomic/3"];
    const GENERATIONS: u32 = 40;
    clear(store).await;
    let batch = |generation: u32| -> Vec<BatchWrite> {
        KEYS.iter()
            .map(|key| BatchWrite::put(*key, generation.to_be_bytes()))
            .collect()
    };
    ok(store.write_batch(&batch(0)).await, "first batch");
    let writer = async {
        for generation in 1..=GENERATIONS {
            ok(store.write_batch(&batch(generation)).await, "write_batch");
        }
    };
    let reader = async {
        let mut seen = Vec::new();
        loop {
            let page = ok(store.scan(None, 10).await, "scan");
            assert_eq!(keys_of(&page), KEYS, "a batch's keys are all there");
            let values: Vec<&Vec<u8>> = page.entries.iter().map(|(_, value)| value).collect();
            assert!(
                values.iter().all(|value| *value == values[0]),
                "one read saw two generations: {values:?}"
            );
            seen.push(values[0].clone());
            if *values[0] == GENERATIONS.to_be_bytes() {
                return seen;
            }
            // A read may finish without ever waiting (SQLite reads on the calling thread):
            // give the writer its turn.
            tokio::task::yield_now().await;
        }
    };
    let ((), seen) = futures::join!(writer, reader);
    assert!(!seen.is_empty());
    clear(store).await;
}

/// `ping` succeeds against a healthy backend.
pub async fn ping_succeeds(store: &dyn KeyValue) {
    ok(store.ping().await, "ping");
}

/// Deletes every key, page by page.
async fn clear(store: &dyn KeyValue) {
    loop {
        let page = ok(store.scan(None, 100).await, "scan to clear");
        if page.entries.is_empty() {
            return;
        }
        for (key, _) in &page.entries {
            ok(store.delete(key).await, "delete to clear");
        }
    }
}

fn ok<T>(result: Result<T, StorageError>, what: &str) -> T {
    result.unwrap_or_else(|error| panic!("{what} failed: {error} ({error:?})"))
}

fn value_of(key: &str) -> Vec<u8> {
    format!("value of {key}").into_bytes()
}

fn keys_of(page: &ScanPage) -> Vec<&str> {
    page.entries.iter().map(|(key, _)| key.as_str()).collect()
}

/// Kept out of the async functions, whose futures must stay `Send`.
fn shuffled(keys: &[String]) -> Vec<String> {
    let mut keys = keys.to_vec();
    keys.shuffle(&mut rand::rng());
    keys
}
