//! The message store's domain: digests, the stored record, and the listing order.
//!
//! A message is stored under its digest (the lowercase hex SHA-256 of its UTF-8 bytes) as a
//! [`Record`] that also carries when it was first seen. The listing is a second namespace whose
//! keys are [`ListingKey`]s, `<first_seen>-<digest>`, so a key-ordered scan walks messages in
//! first-insertion order.

use std::sync::atomic::{AtomicU64, Ordering};

use platform::clock::WallClock;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Why a digest or cursor was refused. Each maps to a 400 problem in `error.rs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Not 64 hexadecimal characters.
    #[error("a digest is 64 hexadecimal characters (SHA-256); got {0}")]
    Digest(String),
    /// Not a cursor this service handed out.
    #[error("`{0}` is not a cursor from a previous page")]
    Cursor(String),
}

/// A SHA-256 digest, kept as 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Digest(String);

impl Digest {
    /// The digest of `message`'s UTF-8 bytes.
    ///
    /// ```
    /// let digest = messages::domain::Digest::of("foo");
    /// assert_eq!(digest.as_str(), "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae");
    /// ```
    pub fn of(message: &str) -> Digest {
        Digest(hex::encode(Sha256::digest(message.as_bytes())))
    }

    /// Parses a path segment: 64 hex characters in either case, normalised to lowercase.
    ///
    /// ```
    /// use messages::domain::Digest;
    /// let upper = "2C26B46B68FFC68FF99B453C1D30413413422D706483BFA0F98A5E886266E7AE";
    /// assert_eq!(Digest::parse(upper).unwrap(), Digest::of("foo"));
    /// assert!(Digest::parse("2c26").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<Digest, ValidationError> {
        if raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Digest(raw.to_ascii_lowercase()))
        } else if raw.chars().count() != 64 {
            Err(ValidationError::Digest(format!(
                "{} characters",
                raw.chars().count()
            )))
        } else {
            Err(ValidationError::Digest(
                "a character that is not hexadecimal".to_owned(),
            ))
        }
    }

    /// The 64 lowercase hex characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What is stored under a digest: the message and when it was first seen (nanoseconds since
/// the Unix epoch), which places it in the listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// When the first POST of this message was handled.
    pub first_seen: u64,
    /// The message.
    pub message: String,
}

/// Where the listing lives in the store, beside the records: records are keyed by their bare
/// digest (hexadecimal, so they all sort before `l`), listing entries by this prefix and their
/// [`ListingKey`]. One namespace for both lets a new message and its listing entry be one
/// atomic write.
pub const LISTING_PREFIX: &str = "listing/";

/// A listing entry, and the cursor handed to clients: `<first_seen>-<digest>`,
/// `first_seen` zero-padded to 20 digits so byte order is time order. It is stored under
/// [`LISTING_PREFIX`] (see [`ListingKey::stored`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingKey(String);

impl ListingKey {
    /// The listing key of the message `digest` first seen at `first_seen`.
    pub fn new(first_seen: u64, digest: &Digest) -> ListingKey {
        ListingKey(format!("{first_seen:020}-{}", digest.as_str()))
    }

    /// Parses a cursor a client sends back.
    ///
    /// ```
    /// use messages::domain::{Digest, ListingKey};
    /// let key = ListingKey::new(42, &Digest::of("foo"));
    /// assert_eq!(ListingKey::parse_cursor(key.as_str()).unwrap(), key);
    /// assert!(ListingKey::parse_cursor("42-abc").is_err());
    /// ```
    pub fn parse_cursor(raw: &str) -> Result<ListingKey, ValidationError> {
        let invalid = || ValidationError::Cursor(raw.chars().take(100).collect());
        let (time, digest) = raw.split_once('-').ok_or_else(invalid)?;
        let time_ok = time.len() == 20 && time.bytes().all(|b| b.is_ascii_digit());
        let digest = Digest::parse(digest).map_err(|_| invalid())?;
        if time_ok && digest.as_str() == &raw[21..] {
            Ok(ListingKey(raw.to_owned()))
        } else {
            Err(invalid())
        }
    }

    /// The key the entry is stored under.
    ///
    /// ```
    /// use messages::domain::{Digest, ListingKey};
    /// let key = ListingKey::new(42, &Digest::of("foo"));
    /// assert_eq!(ListingKey::from_stored(&key.stored()), Some(key));
    /// assert_eq!(ListingKey::from_stored(Digest::of("foo").as_str()), None);
    /// ```
    pub fn stored(&self) -> String {
        format!("{LISTING_PREFIX}{}", self.0)
    }

    /// The entry stored under `key`; `None` for a key that is not a listing entry.
    pub fn from_stored(key: &str) -> Option<ListingKey> {
        let raw = key.strip_prefix(LISTING_PREFIX)?;
        ListingKey::parse_cursor(raw).ok()
    }

    /// The digest part.
    pub fn digest(&self) -> &str {
        &self.0[21..]
    }

    /// The key itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A clock for `first_seen` that never repeats or goes back within the process, so two
/// messages stored in the same nanosecond still get distinct, ordered listing keys.
#[derive(Debug, Default)]
pub struct FirstSeenClock {
    wall: WallClock,
    last: AtomicU64,
}

impl FirstSeenClock {
    /// Stamps from `wall`.
    pub fn new(wall: WallClock) -> FirstSeenClock {
        FirstSeenClock {
            wall,
            last: AtomicU64::new(0),
        }
    }

    /// A time strictly after every earlier one this clock gave.
    pub fn next(&self) -> u64 {
        let now = self
            .wall
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or_default();
        let previous = self
            .last
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last.saturating_add(1)))
            })
            .unwrap_or_else(|last| last);
        now.max(previous.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_64_hex_characters_normalised_to_lowercase() {
        assert_eq!(
            Digest::of("").as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        for bad in [
            "",
            "g".repeat(64).as_str(),
            &"a".repeat(63),
            &"a".repeat(65),
            &"é".repeat(32),
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
        // 64 characters, but a multibyte one: not 64 bytes of hex.
        let mut tricky = "a".repeat(63);
        tricky.push('é');
        assert!(Digest::parse(&tricky).is_err());
    }

    #[test]
    fn listing_keys_sort_by_time_then_digest() {
        let early = ListingKey::new(9, &Digest::of("b"));
        let late = ListingKey::new(10, &Digest::of("a"));
        assert!(early.as_str() < late.as_str());
        assert_eq!(late.digest(), Digest::of("a").as_str());
    }

    #[test]
    fn cursors_must_be_listing_keys() {
        let digest = Digest::of("x");
        let good = ListingKey::new(1, &digest);
        assert!(ListingKey::parse_cursor(good.as_str()).is_ok());
        let upper = format!("{:020}-{}", 1, digest.as_str().to_ascii_uppercase());
        assert!(
            ListingKey::parse_cursor(&upper).is_err(),
            "cursors are exactly as handed out"
        );
        for bad in ["", "-", "x-y", &format!("{:019}-{}", 1, digest.as_str())] {
            assert!(ListingKey::parse_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_first_seen_clock_strictly_increases() {
        let clock = FirstSeenClock::default();
        let mut last = 0;
        for _ in 0..10_000 {
            let next = clock.next();
            assert!(next > last);
            last = next;
        }
    }
}
