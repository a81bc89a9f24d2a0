//! What each receiver saw: sequence checks (gaps and duplicates), latencies inside the measured
//! window, and the sum over receivers.

use hdrhistogram::Histogram;

/// Highest latency recorded, in µs (larger values are clamped): one minute.
const MAX_LATENCY_US: u64 = 60_000_000;

/// The measured window, nanoseconds since the clock base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start of the measured part (the warm-up ends here).
    pub from_ns: u64,
    /// End of the measured part.
    pub to_ns: u64,
}

impl Window {
    pub fn contains(&self, ns: u64) -> bool {
        (self.from_ns..self.to_ns).contains(&ns)
    }
}

/// What one `seq` was, relative to the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// Exactly the previous + 1 (or the first live one).
    InOrder,
    /// History sent on join (at or before the `joined` frame's `last_seq`).
    History,
    /// Later than expected: this many were skipped.
    Gap(u64),
    /// Already seen (or out of order).
    Duplicate,
}

/// Checks one receiver's sequence numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqTracker {
    joined_at: Option<u64>,
    last: Option<u64>,
    /// Messages missing between received ones.
    pub gaps: u64,
    /// Messages received twice or out of order.
    pub duplicates: u64,
}

impl SeqTracker {
    /// The `joined` frame said the room was at `last_seq`: live messages start after it.
    pub fn joined(&mut self, last_seq: u64) {
        self.joined_at = Some(last_seq);
    }

    pub fn observe(&mut self, seq: u64) -> SeqOutcome {
        let previous = match (self.last, self.joined_at) {
            (Some(last), _) => last,
            (None, Some(joined)) if seq <= joined => return SeqOutcome::History,
            (None, Some(joined)) => joined,
            (None, None) => {
                self.last = Some(seq);
                return SeqOutcome::InOrder;
            }
        };
        if seq <= previous {
            self.duplicates += 1;
            return SeqOutcome::Duplicate;
        }
        self.last = Some(seq);
        let skipped = seq - previous - 1;
        if skipped == 0 {
            SeqOutcome::InOrder
        } else {
            self.gaps += skipped;
            SeqOutcome::Gap(skipped)
        }
    }
}

/// What receivers (and publishers) counted; summed over all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Deliveries of messages due in the window (whenever they arrived).
    pub window_deliveries: u64,
    /// Deliveries that arrived inside the window (whatever their due time).
    pub arrived_in_window: u64,
    /// Messages sent whose due time is in the window.
    pub window_sent: u64,
    pub gaps: u64,
    pub duplicates: u64,
    /// Frames that were not ours: error frames, unparsable messages.
    pub errors: u64,
    /// Connections the server closed (or that failed) before the end.
    pub closed: u64,
}

impl Counts {
    /// Counts one delivery of a message due at `scheduled_ns`, received at `now_ns`; returns
    /// its latency in µs when it is to be recorded (due in the window).
    pub fn delivery(&mut self, window: &Window, scheduled_ns: u64, now_ns: u64) -> Option<u64> {
        if window.contains(now_ns) {
            self.arrived_in_window += 1;
        }
        window.contains(scheduled_ns).then(|| {
            self.window_deliveries += 1;
            now_ns.saturating_sub(scheduled_ns) / 1000
        })
    }

    /// Counts one message sent at `sent_ns`, due at `scheduled_ns`; returns the sender's lag in
    /// µs when it is to be recorded.
    pub fn sent(&mut self, window: &Window, scheduled_ns: u64, sent_ns: u64) -> Option<u64> {
        window.contains(scheduled_ns).then(|| {
            self.window_sent += 1;
            sent_ns.saturating_sub(scheduled_ns) / 1000
        })
    }

    pub fn add_tracker(&mut self, tracker: &SeqTracker) {
        self.gaps += tracker.gaps;
        self.duplicates += tracker.duplicates;
    }

    pub fn add(&mut self, other: &Counts) {
        self.window_deliveries += other.window_deliveries;
        self.arrived_in_window += other.arrived_in_window;
        self.window_sent += other.window_sent;
        self.gaps += other.gaps;
        self.duplicates += other.duplicates;
        self.errors += other.errors;
        self.closed += other.closed;
    }
}

/// Latencies over all receivers, shared (receivers add theirs in batches: one histogram per
/// receiver would cost ~100 KiB each).
#[derive(Debug, Clone)]
pub struct Histograms {
    /// End-to-end latency (scheduled send → received) of messages due in the window, µs.
    pub latency_us: Histogram<u64>,
    /// Publisher lag (actual send − scheduled send) of messages due in the window, µs.
    pub send_lag_us: Histogram<u64>,
}

impl Default for Histograms {
    fn default() -> Self {
        let histogram =
            || Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant, valid bounds");
        Histograms {
            latency_us: histogram(),
            send_lag_us: histogram(),
        }
    }
}

/// Records each value of `values` (µs, clamped to the histogram's range) and empties it.
pub fn record_all(histogram: &mut Histogram<u64>, values: &mut Vec<u64>) {
    for value in values.drain(..) {
        histogram.saturating_record(value.clamp(1, MAX_LATENCY_US));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_sequence_numbers_are_in_order() {
        let mut tracker = SeqTracker::default();
        tracker.joined(10);
        assert_eq!(tracker.observe(11), SeqOutcome::InOrder);
        assert_eq!(tracker.observe(12), SeqOutcome::InOrder);
        assert_eq!((tracker.gaps, tracker.duplicates), (0, 0));
    }

    #[test]
    fn history_before_the_first_live_message_is_not_a_duplicate() {
        let mut tracker = SeqTracker::default();
        tracker.joined(3);
        assert_eq!(tracker.observe(2), SeqOutcome::History);
        assert_eq!(tracker.observe(3), SeqOutcome::History);
        assert_eq!(tracker.observe(4), SeqOutcome::InOrder);
        assert_eq!(tracker.observe(3), SeqOutcome::Duplicate);
        assert_eq!((tracker.gaps, tracker.duplicates), (0, 1));
    }

    #[test]
    fn gaps_count_every_missing_message_and_duplicates_each_repeat() {
        let mut tracker = SeqTracker::default();
        tracker.joined(0);
        assert_eq!(tracker.observe(1), SeqOutcome::InOrder);
        assert_eq!(tracker.observe(4), SeqOutcome::Gap(2));
        assert_eq!(tracker.observe(4), SeqOutcome::Duplicate);
        assert_eq!(tracker.observe(2), SeqOutcome::Duplicate);
        assert_eq!(tracker.observe(5), SeqOutcome::InOrder);
        assert_eq!(tracker.observe(9), SeqOutcome::Gap(3));
        assert_eq!((tracker.gaps, tracker.duplicates), (5, 2));
        // A gap right after joining counts too.
        let mut late = SeqTracker::default();
        late.joined(7);
        assert_eq!(late.observe(9), SeqOutcome::Gap(1));
    }

    #[test]
    fn only_messages_due_in_the_window_are_measured() {
        let window = Window {
            from_ns: 1_000_000,
            to_ns: 2_000_000,
        };
        let mut counts = Counts::default();
        // A warm-up message arriving in the window: counted as arrived, not measured.
        assert_eq!(counts.delivery(&window, 500_000, 1_200_000), None);
        assert_eq!(counts.delivery(&window, 1_500_000, 1_700_000), Some(200));
        // Due in the window, arriving after it: measured, not counted as arrived.
        assert_eq!(counts.delivery(&window, 1_900_000, 2_400_000), Some(500));
        assert_eq!(counts.window_deliveries, 2);
        assert_eq!(counts.arrived_in_window, 2);
        assert_eq!(counts.sent(&window, 1_000_000, 1_050_000), Some(50));
        assert_eq!(counts.sent(&window, 2_000_000, 2_000_000), None);
        let mut sum = Counts::default();
        sum.add(&counts);
        sum.add(&counts);
        assert_eq!((sum.window_deliveries, sum.window_sent), (4, 2));
        let mut histograms = Histograms::default();
        let mut pending = vec![200, 500, 0];
        record_all(&mut histograms.latency_us, &mut pending);
        assert!(pending.is_empty());
        assert_eq!(histograms.latency_us.len(), 3);
        assert_eq!(histograms.latency_us.min(), 1);
    }
}
