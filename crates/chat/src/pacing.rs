//! When a room hands its messages to its members.
//!
//! Queuing a frame for a member is cheap; what costs is what follows: waking the member's
//! connection and writing to its socket, about 5 µs of CPU, 70% of it the kernel's TCP send path
//! (`perf` at 200,000 deliveries/s), and nearly the same for one frame as for twenty. A quiet
//! room, where latency shows, fans out every batch the moment it is ready. A busy room (over
//! [`BUSY_DELIVERIES_PER_SECOND`]) fans out at most once per interval, so each member gets
//! what accumulated in one wake-up and one write: wake-ups per second stay bounded however
//! fast messages come, at the price of at most one interval of added latency.
//!
//! ```
//! use std::time::Duration;
//! use chat::pacing::Pacing;
//! use tokio::time::Instant;
//!
//! let start = Instant::now();
//! let mut pacing = Pacing::new(start);
//! // Quiet: fan out now.
//! assert_eq!(pacing.due(start, 100), start);
//! // 10,000 deliveries in the first 100 ms (100,000/s) make the room busy...
//! pacing.fanned_out(start, 10_000);
//! let later = start + Duration::from_millis(100);
//! pacing.fanned_out(later, 100);
//! // ...so the next fan-out waits for the interval: 20 µs per member, 2 ms for 100.
//! let next = later + Duration::from_micros(500);
//! assert_eq!(pacing.due(next, 100), later + Duration::from_millis(2));
//! ```

use std::time::Duration;

use tokio::time::Instant;

/// A room delivering more frames than this per second (messages × members) is paced.
pub const BUSY_DELIVERIES_PER_SECOND: f64 = 50_000.0;
/// The delivery rate is measured over windows of this length.
const WINDOW: Duration = Duration::from_millis(100);
/// A busy room's interval grows with its members, so its wake-ups per second stay near
/// 1 / 20 µs = 50,000, within [`MIN_INTERVAL`] and [`MAX_INTERVAL`].
const INTERVAL_PER_MEMBER: Duration = Duration::from_micros(20);
const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// The most latency pacing adds, a tenth of the delivery SLO's 100 ms.
const MAX_INTERVAL: Duration = Duration::from_millis(10);

/// A room's fan-out clock; see the module documentation.
#[derive(Debug)]
pub struct Pacing {
    window_start: Instant,
    window_deliveries: u64,
    busy: bool,
    last: Option<Instant>,
}

impl Pacing {
    /// A quiet room's clock.
    pub fn new(now: Instant) -> Pacing {
        Pacing {
            window_start: now,
            window_deliveries: 0,
            busy: false,
            last: None,
        }
    }

    /// When frames ready at `now` go out to a room of `members`: at once while the room is
    /// quiet, else one interval after the previous fan-out.
    pub fn due(&mut self, now: Instant, members: usize) -> Instant {
        self.roll(now);
        match self.last {
            Some(last) if self.busy => (last + interval(members)).max(now),
            _ => now,
        }
    }

    /// Records a fan-out at `now` of `deliveries` frames (frames × members).
    pub fn fanned_out(&mut self, now: Instant, deliveries: u64) {
        self.roll(now);
        self.window_deliveries = self.window_deliveries.saturating_add(deliveries);
        self.last = Some(now);
    }

    /// Closes the window once it is over: the room is busy for the next one if this one's rate
    /// was over the threshold. A long quiet spell ends up in one long window, and a low rate.
    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= WINDOW {
            let per_second = self.window_deliveries as f64 / elapsed.as_secs_f64();
            self.busy = per_second > BUSY_DELIVERIES_PER_SECOND;
            self.window_start = now;
            self.window_deliveries = 0;
        }
    }
}

fn interval(members: usize) -> Duration {
    let members = u32::try_from(members).unwrap_or(u32::MAX);
    INTERVAL_PER_MEMBER
        .saturating_mul(members)
        .clamp(MIN_INTERVAL, MAX_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// A clock that saw `deliveries` in its first window, closed at `start + 100 ms`.
    fn after_window(start: Instant, deliveries: u64) -> Pacing {
        let mut pacing = Pacing::new(start);
        pacing.fanned_out(start, deliveries);
        pacing.fanned_out(start + WINDOW, 0);
        pacing
    }

    #[test]
    fn a_quiet_room_fans_out_at_once() {
        let start = Instant::now();
        // 4,000 deliveries in 100 ms: 40,000/s, under the threshold.
        let mut pacing = after_window(start, 4_000);
        let now = start + WINDOW + Duration::from_micros(10);
        assert_eq!(pacing.due(now, 100), now);
    }

    #[test]
    fn a_busy_room_waits_one_interval_after_its_last_fan_out() {
        let start = Instant::now();
        let mut pacing = after_window(start, 6_000);
        let last = start + WINDOW;
        assert_eq!(pacing.due(last + ms(1), 100), last + ms(2));
        // Later than the interval: at once.
        assert_eq!(pacing.due(last + ms(3), 100), last + ms(3));
    }

    #[test]
    fn the_interval_grows_with_members_within_bounds() {
        assert_eq!(interval(10), ms(1));
        assert_eq!(interval(100), ms(2));
        assert_eq!(interval(250), ms(5));
        assert_eq!(interval(1_000), ms(10));
        assert_eq!(interval(usize::MAX), ms(10));
    }

    #[test]
    fn a_room_that_quietens_stops_being_paced() {
        let start = Instant::now();
        let mut pacing = after_window(start, 6_000);
        // The next window sees 100 deliveries in 100 ms.
        let last = start + WINDOW + ms(50);
        pacing.fanned_out(last, 100);
        let now = start + WINDOW * 2 + Duration::from_micros(1);
        assert_eq!(pacing.due(now, 100), now);
    }

    #[test]
    fn a_long_silence_counts_as_quiet() {
        let start = Instant::now();
        let mut pacing = after_window(start, 6_000);
        let mut now = start + WINDOW + ms(1);
        assert!(pacing.due(now, 100) > now);
        // 6,000 deliveries, then a minute without any.
        pacing.fanned_out(now, 6_000);
        now += Duration::from_secs(60);
        assert_eq!(pacing.due(now, 100), now);
    }
}
