//! The open-loop schedule: `rate` messages per second in total, spread evenly over `publishers`
//! publishers, interleaved so the whole stream is evenly spaced. Message `k` of publisher `g`
//! is due at `start + (k * publishers + g) / rate`. Publishers send what is due whatever the
//! replies, so slow answers cannot slow the offered load down.

/// One publisher's schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Schedule {
    /// Nanoseconds since the clock base of the first message of the whole stream.
    pub(crate) start_ns: u64,
    /// No message is due at or after this (nanoseconds since the clock base).
    pub(crate) end_ns: u64,
    /// Messages per second over all publishers.
    pub(crate) rate: f64,
    /// How many publishers share the rate.
    pub(crate) publishers: u32,
    /// This publisher's index, `0..publishers`.
    pub(crate) index: u32,
}

impl Schedule {
    /// When message `k` of this publisher is due; `None` once that is past the end.
    pub(crate) fn due_ns(&self, k: u64) -> Option<u64> {
        let slot = k as f64 * f64::from(self.publishers) + f64::from(self.index);
        let due = self.start_ns + (slot * 1e9 / self.rate) as u64;
        (due < self.end_ns).then_some(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishers_interleave_into_an_evenly_spaced_stream() {
        let schedule = |index| Schedule {
            start_ns: 1_000,
            end_ns: 1_000 + 1_000_000_000,
            rate: 1000.0,
            publishers: 4,
            index,
        };
        // 1000 messages/s: one every millisecond; publisher 2 has slots 2, 6, 10, …
        assert_eq!(schedule(0).due_ns(0), Some(1_000));
        assert_eq!(schedule(2).due_ns(0), Some(1_000 + 2_000_000));
        assert_eq!(schedule(2).due_ns(1), Some(1_000 + 6_000_000));
        assert_eq!(schedule(3).due_ns(249), Some(1_000 + 999_000_000));
        assert_eq!(schedule(0).due_ns(250), None);
        let sent: usize = (0..4)
            .map(|index| (0..).map_while(|k| schedule(index).due_ns(k)).count())
            .sum();
        assert_eq!(sent, 1000);
    }
}
