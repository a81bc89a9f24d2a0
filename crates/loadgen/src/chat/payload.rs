//! The payload each publisher sends: `<publisher>:<n>:<scheduled_ns>` padded with `.` to the
//! requested size. The stamp is the *scheduled* send time in nanoseconds since the process-wide
//! [`clock`](crate::chat::clock) base, so a late sender shows up as latency (no coordinated omission).

/// What a payload says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The global publisher index.
    pub publisher: u32,
    /// The publisher's message number, from 0.
    pub n: u64,
    /// When the message was scheduled, nanoseconds since the clock base.
    pub scheduled_ns: u64,
}

/// The payload text for `stamp`, padded with `.` to `size` bytes (never truncated).
pub fn encode(stamp: Stamp, size: usize) -> String {
    let mut text = format!("{}:{}:{}:", stamp.publisher, stamp.n, stamp.scheduled_ns);
    if text.len() < size {
        text.extend(std::iter::repeat_n('.', size - text.len()));
    }
    text
}

/// The stamp at the start of a payload; `None` when it is not one of ours.
pub fn parse(text: &str) -> Option<Stamp> {
    let mut fields = text.splitn(4, ':');
    let publisher = fields.next()?.parse().ok()?;
    let n = fields.next()?.parse().ok()?;
    let scheduled_ns = fields.next()?.parse().ok()?;
    fields.next()?;
    Some(Stamp {
        publisher,
        n,
        scheduled_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_survives_encoding_and_padding() {
        let stamp = Stamp {
            publisher: 7,
            n: 12_345,
            scheduled_ns: 9_876_543_210,
        };
        let text = encode(stamp, 64);
        assert_eq!(text.len(), 64);
        assert!(text.starts_with("7:12345:9876543210:."));
        assert_eq!(parse(&text), Some(stamp));
    }

    #[test]
    fn a_short_size_never_truncates_the_stamp() {
        let stamp = Stamp {
            publisher: 1,
            n: 2,
            scheduled_ns: 3,
        };
        assert_eq!(encode(stamp, 0), "1:2:3:");
        assert_eq!(parse("1:2:3:"), Some(stamp));
    }

    #[test]
    fn foreign_text_is_not_a_stamp() {
        for text in ["", "hello", "1:2", "1:2:3", "a:2:3:", "1:-2:3:", "1:2:x:"] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }
}
