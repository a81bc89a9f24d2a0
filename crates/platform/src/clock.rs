//! The wall clock a service reads "now" from, injected so tests pin it.
//!
//! Services keep a [`WallClock`] in their state and never call `SystemTime::now()` themselves:
//! a test hands them [`WallClock::fixed`] and asserts on exact dates and ages instead of
//! racing the real clock.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// "Now", as the service sees it: the system clock, or a fixed or test-driven one.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use platform::clock::WallClock;
/// let clock = WallClock::fixed(UNIX_EPOCH + Duration::from_secs(86_400));
/// assert_eq!(clock.unix_seconds(), 86_400);
/// assert_eq!(clock.today_utc().to_string(), "1970-01-02");
/// ```
#[derive(Clone)]
pub struct WallClock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl WallClock {
    /// The system's clock.
    pub fn system() -> WallClock {
        WallClock(Arc::new(SystemTime::now))
    }

    /// A clock that always reads `now`.
    pub fn fixed(now: SystemTime) -> WallClock {
        WallClock(Arc::new(move || now))
    }

    /// A clock that reads whatever `now` returns, e.g. a time a test advances.
    pub fn from_fn(now: impl Fn() -> SystemTime + Send + Sync + 'static) -> WallClock {
        WallClock(Arc::new(now))
    }

    /// Now.
    pub fn now(&self) -> SystemTime {
        (self.0)()
    }

    /// Seconds since the Unix epoch (0 for a clock set before it).
    pub fn unix_seconds(&self) -> u64 {
        self.since_epoch().as_secs()
    }

    /// Milliseconds since the Unix epoch (0 for a clock set before it).
    pub fn unix_millis(&self) -> u64 {
        u64::try_from(self.since_epoch().as_millis()).unwrap_or(u64::MAX)
    }

    /// Now as a UTC date and time.
    pub fn now_utc(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::from(self.now())
    }

    /// Today's date in UTC.
    pub fn today_utc(&self) -> time::Date {
        self.now_utc().date()
    }

    fn since_epoch(&self) -> Duration {
        self.now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

impl Default for WallClock {
    fn default() -> WallClock {
        WallClock::system()
    }
}

impl std::fmt::Debug for WallClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("WallClock").field(&self.now()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driven_clock_moves_when_its_source_does() {
        let source = Arc::new(std::sync::atomic::AtomicU64::new(1_000));
        let read = source.clone();
        let clock = WallClock::from_fn(move || {
            UNIX_EPOCH + Duration::from_millis(read.load(std::sync::atomic::Ordering::SeqCst))
        });
        assert_eq!(clock.unix_millis(), 1_000);
        source.store(2_500, std::sync::atomic::Ordering::SeqCst);
        assert_eq!((clock.unix_millis(), clock.unix_seconds()), (2_500, 2));
    }

    #[test]
    fn before_the_epoch_reads_as_zero() {
        let clock = WallClock::fixed(UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!((clock.unix_seconds(), clock.unix_millis()), (0, 0));
    }
}
