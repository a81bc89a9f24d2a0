//! messages' scenarios: `POST /messages` of a new message on every request, so each one is a
//! real write, `GET /messages/{digest}` over messages posted beforehand, and (for the soak)
//! `POST /messages` of those same messages again.

use std::sync::Arc;

use bytes::Bytes;
use hyper::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest as _, Sha256};

use super::{HttpScenario, RequestSpec, RequestStream};

/// Length of every message, in bytes: a short chat line.
pub const MESSAGE_BYTES: usize = 100;

/// Fills a message up to [`MESSAGE_BYTES`] after its distinct prefix.
const FILLER: &str = " The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog. The quick brown fox.";

/// `prefix` filled up to [`MESSAGE_BYTES`]; a longer prefix is kept whole, so it stays distinct.
fn padded(prefix: String) -> String {
    let mut message = prefix;
    let missing = MESSAGE_BYTES.saturating_sub(message.len());
    message.push_str(&FILLER[..missing.min(FILLER.len())]);
    message
}

/// Fixture message `idx`: the same text in every run, so its digest is known beforehand.
pub fn fixture_message(idx: usize) -> String {
    padded(format!("loadgen fixture message {idx:08}."))
}

/// The message connection `connection_idx` sends as its `seq`-th request in run `run`: distinct
/// for every run, connection and sequence number.
pub fn fresh_message(run: u64, connection_idx: usize, seq: u64) -> String {
    padded(format!(
        "loadgen run {run:016x} connection {connection_idx:05} message {seq:012}."
    ))
}

/// The lowercase hex SHA-256 of `message`, the key messages stores it under.
pub fn digest(message: &str) -> String {
    hex::encode(Sha256::digest(message.as_bytes()))
}

/// `POST /messages` of `message`. The messages loadgen makes need no JSON escaping.
fn post(message: &str) -> RequestSpec {
    debug_assert!(!message.contains(['"', '\\']) && message.is_ascii());
    RequestSpec {
        method: Method::POST,
        path: "/messages".to_owned(),
        json_body: Some(Bytes::from(format!(r#"{{"message":"{message}"}}"#))),
        authorization: None,
    }
}

/// `GET /messages/{digest}` over `messages` fixture messages, picked uniformly at random.
pub struct Get {
    /// `/messages/{digest}` of every fixture message, computed once.
    paths: Arc<[String]>,
}

impl Get {
    /// Reads `messages` fixture messages (at least one).
    pub fn new(messages: usize) -> Get {
        let paths = (0..messages.max(1))
            .map(|idx| format!("/messages/{}", digest(&fixture_message(idx))))
            .collect();
        Get { paths }
    }
}

impl HttpScenario for Get {
    fn fixtures(&self) -> Vec<RequestSpec> {
        (0..self.paths.len())
            .map(|idx| post(&fixture_message(idx)))
            .collect()
    }

    fn stream(&self, connection_idx: usize) -> Box<dyn RequestStream> {
        // Seeded from the OS so connections and runs read in different orders.
        let seed = rand::rng().random::<u64>() ^ connection_idx as u64;
        Box::new(GetStream {
            paths: self.paths.clone(),
            rng: StdRng::seed_from_u64(seed),
        })
    }
}

struct GetStream {
    paths: Arc<[String]>,
    rng: StdRng,
}

impl RequestStream for GetStream {
    fn next_request(&mut self) -> RequestSpec {
        let idx = self.rng.random_range(0..self.paths.len());
        RequestSpec {
            method: Method::GET,
            path: self.paths[idx].clone(),
            json_body: None,
            authorization: None,
        }
    }
}

/// `POST /messages` of a message never sent before, on every request.
pub struct Post {
    /// Random per scenario, so a later run against the same server stores new messages too.
    run: u64,
}

impl Post {
    /// A run with its own messages.
    pub fn new() -> Post {
        Post {
            run: rand::rng().random(),
        }
    }
}

impl Default for Post {
    fn default() -> Self {
        Post::new()
    }
}

impl HttpScenario for Post {
    fn fixtures(&self) -> Vec<RequestSpec> {
        Vec::new()
    }

    fn stream(&self, connection_idx: usize) -> Box<dyn RequestStream> {
        Box::new(PostStream {
            run: self.run,
            connection_idx,
            seq: 0,
        })
    }
}

struct PostStream {
    run: u64,
    connection_idx: usize,
    seq: u64,
}

impl RequestStream for PostStream {
    fn next_request(&mut self) -> RequestSpec {
        let message = fresh_message(self.run, self.connection_idx, self.seq);
        self.seq += 1;
        post(&message)
    }
}

/// `POST /messages` of one of `messages` fixture messages, picked uniformly at random: stored
/// already, so messages rewrites its listing key and the store does not grow.
pub struct Repost {
    messages: usize,
}

impl Repost {
    /// Re-posts `messages` fixture messages (at least one).
    pub fn new(messages: usize) -> Repost {
        Repost {
            messages: messages.max(1),
        }
    }
}

impl HttpScenario for Repost {
    fn fixtures(&self) -> Vec<RequestSpec> {
        Vec::new()
    }

    fn stream(&self, connection_idx: usize) -> Box<dyn RequestStream> {
        let seed = rand::rng().random::<u64>() ^ connection_idx as u64;
        Box::new(RepostStream {
            messages: self.messages,
            rng: StdRng::seed_from_u64(seed),
        })
    }
}

struct RepostStream {
    messages: usize,
    rng: StdRng,
}

impl RequestStream for RepostStream {
    fn next_request(&mut self) -> RequestSpec {
        post(&fixture_message(self.rng.random_range(0..self.messages)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// The message in a `POST /messages` body, checked to be what messages accepts.
    fn posted_message(spec: &RequestSpec) -> String {
        assert_eq!(spec.method, Method::POST);
        assert_eq!(spec.path, "/messages");
        let body: serde_json::Value =
            serde_json::from_slice(spec.json_body.as_deref().expect("a body")).expect("JSON");
        body["message"]
            .as_str()
            .expect("a string message")
            .to_owned()
    }

    #[test]
    fn the_digest_is_the_hex_sha256_of_the_text() {
        assert_eq!(
            digest("foo"),
            "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
        );
    }

    #[test]
    fn every_post_sends_a_new_message_of_the_same_size() {
        let mut seen = HashSet::new();
        for post in [Post::new(), Post::new()] {
            for connection_idx in [0, 1, 63] {
                let mut stream = post.stream(connection_idx);
                for _ in 0..500 {
                    let message = posted_message(&stream.next_request());
                    assert_eq!(message.len(), MESSAGE_BYTES, "{message:?}");
                    assert!(seen.insert(message.clone()), "{message:?} repeats");
                }
            }
        }
        assert!(Post::new().fixtures().is_empty());
        // Past the widths the format pads to, messages grow rather than collide.
        assert_ne!(
            fresh_message(u64::MAX, 123_456, u64::MAX),
            fresh_message(u64::MAX, 123_457, u64::MAX)
        );
    }

    #[test]
    fn reposts_send_only_fixture_messages() {
        let fixtures: HashSet<String> =
            Get::new(10).fixtures().iter().map(posted_message).collect();
        let mut stream = Repost::new(10).stream(1);
        for _ in 0..200 {
            let message = posted_message(&stream.next_request());
            assert!(fixtures.contains(&message), "{message:?} is new");
        }
    }

    #[test]
    fn gets_read_the_digests_of_the_fixtures() {
        let get = Get::new(10);
        let fixtures = get.fixtures();
        assert_eq!(fixtures.len(), 10);
        let written: HashSet<String> = fixtures
            .iter()
            .map(|spec| {
                let message = posted_message(spec);
                assert_eq!(message.len(), MESSAGE_BYTES, "{message:?}");
                format!("/messages/{}", digest(&message))
            })
            .collect();
        assert_eq!(written.len(), 10, "fixture messages are distinct");
        let mut stream = get.stream(3);
        for _ in 0..100 {
            let spec = stream.next_request();
            assert_eq!(spec.method, Method::GET);
            assert_eq!(spec.json_body, None);
            assert!(
                written.contains(&spec.path),
                "{} was never posted",
                spec.path
            );
        }
    }
}
