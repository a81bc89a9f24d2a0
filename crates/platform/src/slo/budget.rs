//! The in-process error budget behind `GET /slo` on the admin port.
//!
//! Every finished request (and every event a service reports for a [`Sli::Ratio`] SLO) is
//! classified per SLO and counted. The answer gives, per SLO and per window (5m, 30m, 1h, 2h, 6h,
//! 1d, 3d and the SLO's own window), the events counted, the measured SLI, the error budget
//! remaining and the burn rate. A window longer than the process's uptime is answered over the
//! uptime and marked `complete: false`: one replica's view, since its own start, not the fleet's
//! (Prometheus has that).
//!
//! # Memory and cost
//!
//! Per SLO the tracker keeps two cumulative counters (total, bad) and two rings of snapshots of
//! them: one slot per minute for the last 6 hours (361 slots) and one per hour for the SLO's
//! window (721 slots for 30 days). A window's counts are "cumulative now minus the snapshot at
//! the window's start", so a window is rounded up to its ring's resolution (a minute up to 6h,
//! an hour beyond). That is 16 bytes a slot, about 17 KiB per 30-day SLO, fixed at start-up
//! whatever the traffic or uptime.
//!
//! Recording is lock-free: a clock read, a route comparison, one or two atomic additions and one
//! atomic load per SLO. Once a minute the first request to notice the new minute takes a mutex to
//! write the snapshots; readers of `/slo` take the same mutex. No event is ever dropped: at worst
//! an event racing that roll-over is attributed to the neighbouring minute.
//!
//! # Ratio SLIs
//!
//! A [`Sli::Ratio`] SLO counts service events, not requests: the service calls
//! [`Budgets::record_ratio`] with the SLO's name wherever it increments the counters the SLO's
//! `bad` and `total` selectors name, so `/slo` and Prometheus agree.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::slo::{PROBE_ROUTES, Routes, Sli, Slo};

/// The short windows every SLO reports, in seconds (the burn-rate alert windows).
pub const WINDOWS: &[u64] = &[300, 1800, 3600, 7200, 21_600, 86_400, 259_200];

/// Resolution and span of the fine ring: one slot a minute for 6 hours.
const MINUTE: u64 = 60;
const FINE_SPAN: u64 = 6 * 3600;
/// Resolution of the coarse ring, which spans the SLO's window.
const HOUR: u64 = 3600;

/// The route label of requests no route matched, as the HTTP metrics write it.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// A source of "now" in whole seconds since an arbitrary, fixed start (the tracker's uptime).
/// Injectable so tests move time by hand.
pub trait Clock: Send + Sync {
    /// Seconds elapsed since the clock's start; never decreases.
    fn now_seconds(&self) -> u64;
}

/// The real clock: monotonic seconds since the tracker was built.
#[derive(Debug)]
pub struct MonotonicClock {
    start: Instant,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock {
            start: Instant::now(),
        }
    }
}

impl Clock for MonotonicClock {
    fn now_seconds(&self) -> u64 {
        self.start.elapsed().as_secs()
    }
}

/// How one request counts for one SLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counted, and good.
    Good,
    /// Counted, and bad (spends error budget).
    Bad,
    /// Not counted: a probe, a route the SLI does not name, or a non-request SLI.
    Ignored,
}

/// Classifies a finished request for `sli`: availability is bad iff the status is 5xx; latency
/// is bad iff the request took longer than the threshold; only routes the SLI names count
/// (`unmatched` is a route like any other, and is not a probe). Ratio SLIs ignore requests.
pub fn classify(sli: &Sli, route: &str, status: u16, latency: Duration) -> Verdict {
    let (routes, bad) = match sli {
        Sli::Availability { routes } => (routes, (500..600).contains(&status)),
        Sli::Latency {
            threshold_seconds,
            routes,
        } => (routes, latency.as_secs_f64() > *threshold_seconds),
        Sli::Ratio { .. } => return Verdict::Ignored,
    };
    let counted = match routes {
        Routes::AllButProbes => !PROBE_ROUTES.contains(&route),
        Routes::Only(only) => only.contains(&route),
    };
    match (counted, bad) {
        (false, _) => Verdict::Ignored,
        (true, true) => Verdict::Bad,
        (true, false) => Verdict::Good,
    }
}

/// Cumulative counts at the start of each bucket of `width` seconds; slot `i % len` holds
/// bucket `i`'s, for the last `len` buckets.
#[derive(Debug)]
struct Ring {
    width: u64,
    slots: Box<[(u64, u64)]>,
    /// The newest bucket whose snapshot is written.
    last: u64,
}

impl Ring {
    /// A ring answering windows up to `span` seconds at `width` resolution.
    fn new(width: u64, span: u64) -> Ring {
        // One slot more than the span, so the snapshot at the start of the longest window is
        // still there while the current bucket fills.
        let len = span.div_ceil(width).saturating_add(1);
        Ring {
            width,
            slots: vec![(0, 0); usize::try_from(len).unwrap_or(usize::MAX)].into_boxed_slice(),
            last: 0,
        }
    }

    fn len(&self) -> u64 {
        self.slots.len() as u64
    }

    fn slot(&self, bucket: u64) -> usize {
        // The remainder is below `len`, which came from a `usize`.
        usize::try_from(bucket % self.len()).unwrap_or(0)
    }

    /// Writes `cumulative` as the start of every bucket after `last` up to `now`'s: nothing was
    /// counted in a bucket nobody noticed starting.
    fn advance(&mut self, now: u64, cumulative: (u64, u64)) {
        let bucket = now / self.width;
        if bucket <= self.last {
            return;
        }
        let from = (self.last + 1).max((bucket + 1).saturating_sub(self.len()));
        for index in from..=bucket {
            let slot = self.slot(index);
            self.slots[slot] = cumulative;
        }
        self.last = bucket;
    }

    /// The cumulative counts at the start of the window of `seconds` ending now (rounded up to
    /// the ring's resolution), or zeros when the window reaches back before the start.
    fn base(&self, now: u64, seconds: u64) -> (u64, u64) {
        let buckets = seconds.div_ceil(self.width);
        match (now / self.width).checked_sub(buckets) {
            Some(start) if now >= seconds => self.slots[self.slot(start)],
            _ => (0, 0),
        }
    }
}

/// One SLO's counters.
#[derive(Debug)]
struct Track {
    slo: Slo,
    total: AtomicU64,
    bad: AtomicU64,
    /// The minute the rings were last advanced to; compared on every event, so only the first
    /// event of a minute takes the lock.
    rolled: AtomicU64,
    /// The fine (minute) ring and the coarse (hour) ring.
    rings: Mutex<[Ring; 2]>,
}

impl Track {
    fn new(slo: &Slo) -> Track {
        let window = slo.window.as_secs().max(1);
        Track {
            slo: slo.clone(),
            total: AtomicU64::new(0),
            bad: AtomicU64::new(0),
            rolled: AtomicU64::new(0),
            rings: Mutex::new([
                Ring::new(MINUTE, FINE_SPAN.min(window)),
                Ring::new(HOUR, window),
            ]),
        }
    }

    fn cumulative(&self) -> (u64, u64) {
        (
            self.total.load(Ordering::Relaxed),
            self.bad.load(Ordering::Relaxed),
        )
    }

    fn roll(&self, now: u64) -> std::sync::MutexGuard<'_, [Ring; 2]> {
        // A panic while holding the lock cannot leave the rings inconsistent in a way that
        // matters (each slot is one write), so a poisoned lock is used as is.
        let mut rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        let cumulative = self.cumulative();
        for ring in rings.iter_mut() {
            ring.advance(now, cumulative);
        }
        self.rolled.store(now / MINUTE, Ordering::Relaxed);
        rings
    }

    fn record(&self, now: u64, total: u64, bad: u64) {
        // Snapshot before counting, so these events fall in the new minute.
        if self.rolled.load(Ordering::Relaxed) != now / MINUTE {
            drop(self.roll(now));
        }
        self.total.fetch_add(total, Ordering::Relaxed);
        if bad > 0 {
            self.bad.fetch_add(bad, Ordering::Relaxed);
        }
    }

    fn report(&self, now: u64) -> SloReport {
        let rings = self.roll(now);
        let cumulative = self.cumulative();
        let slo_window = self.slo.window.as_secs().max(1);
        let budget = self.slo.error_budget();
        let windows = WINDOWS
            .iter()
            .copied()
            .filter(|&seconds| seconds < slo_window)
            .chain(std::iter::once(slo_window))
            .map(|seconds| {
                let ring = if seconds <= FINE_SPAN {
                    &rings[0]
                } else {
                    &rings[1]
                };
                let base = ring.base(now, seconds);
                let total = cumulative.0.saturating_sub(base.0);
                let bad = cumulative.1.saturating_sub(base.1);
                WindowReport::new(seconds, now, total, bad, budget)
            })
            .collect();
        SloReport {
            name: self.slo.name,
            description: self.slo.description.clone(),
            objective: self.slo.objective,
            error_budget: budget,
            window: duration_label(slo_window),
            window_seconds: slo_window,
            windows,
        }
    }

    fn memory_bytes(&self) -> usize {
        let rings = self.rings.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::size_of::<Track>()
            + rings
                .iter()
                .map(|ring| std::mem::size_of_val(&*ring.slots))
                .sum::<usize>()
    }
}

/// The live error budgets of a service's SLOs. Cheap to clone (shared state); one per server.
#[derive(Clone)]
pub struct Budgets {
    tracks: Arc<[Track]>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgets")
            .field("slos", &self.tracks.len())
            .finish_non_exhaustive()
    }
}

impl Budgets {
    /// Tracks `slos` on the real clock.
    pub fn new(slos: &[Slo]) -> Budgets {
        Budgets::with_clock(slos, Arc::new(MonotonicClock::default()))
    }

    /// Tracks `slos` on `clock` (tests pass one they move by hand).
    pub fn with_clock(slos: &[Slo], clock: Arc<dyn Clock>) -> Budgets {
        Budgets {
            tracks: slos.iter().map(Track::new).collect(),
            clock,
        }
    }

    /// Counts one finished request for every request SLO whose routes include `route` (the
    /// route template, or [`UNMATCHED_ROUTE`]). Not for aborted requests: those are neither good
    /// nor bad.
    pub fn record_request(&self, route: &str, status: u16, latency: Duration) {
        if self.tracks.is_empty() {
            return;
        }
        let now = self.clock.now_seconds();
        for track in self.tracks.iter() {
            match classify(&track.slo.sli, route, status, latency) {
                Verdict::Good => track.record(now, 1, 0),
                Verdict::Bad => track.record(now, 1, 1),
                Verdict::Ignored => {}
            }
        }
    }

    /// Counts `total` events of which `bad` were bad for the [`Sli::Ratio`] SLO named `slo`.
    /// Call it where the service increments the counters the SLO's selectors name, with the same
    /// amounts (e.g. chat: `record_ratio("delivery", 1, u64::from(failed))` per message).
    /// Returns `false`, counting nothing, when no ratio SLO has that name; `bad` above `total`
    /// is clamped to `total`.
    pub fn record_ratio(&self, slo: &str, total: u64, bad: u64) -> bool {
        let Some(track) = self
            .tracks
            .iter()
            .find(|track| track.slo.name == slo && matches!(track.slo.sli, Sli::Ratio { .. }))
        else {
            return false;
        };
        track.record(self.clock.now_seconds(), total, bad.min(total));
        true
    }

    /// Every SLO's budget now, as `GET /slo` answers it.
    pub fn report(&self) -> Report {
        let now = self.clock.now_seconds();
        Report {
            uptime_seconds: now,
            slos: self.tracks.iter().map(|track| track.report(now)).collect(),
        }
    }

    /// The bytes the tracker holds, fixed at construction: the bound the module doc states.
    pub fn memory_bytes(&self) -> usize {
        self.tracks.iter().map(Track::memory_bytes).sum()
    }
}

/// What `GET /slo` answers.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Seconds since the tracker started: windows longer than this are incomplete.
    pub uptime_seconds: u64,
    /// One entry per declared SLO, in declaration order.
    pub slos: Vec<SloReport>,
}

/// One SLO's budget.
#[derive(Debug, Clone, Serialize)]
pub struct SloReport {
    /// The SLO's name.
    pub name: &'static str,
    /// What "good" means.
    pub description: Cow<'static, str>,
    /// The target ratio of good events.
    pub objective: f64,
    /// `1 - objective`.
    pub error_budget: f64,
    /// The compliance window as a Prometheus duration, e.g. `30d`.
    pub window: String,
    /// The compliance window in seconds.
    pub window_seconds: u64,
    /// The budget over each window, shortest first; the last is the compliance window.
    pub windows: Vec<WindowReport>,
}

/// The events and budget over one window.
#[derive(Debug, Clone, Serialize)]
pub struct WindowReport {
    /// The window as a Prometheus duration, e.g. `5m`.
    pub window: String,
    /// The window in seconds.
    pub seconds: u64,
    /// `false` while the process has run for less than the window: the counts then cover the
    /// uptime only.
    pub complete: bool,
    /// Events counted.
    pub total: u64,
    /// Bad events counted.
    pub bad: u64,
    /// `good / total`; `null` when nothing was counted.
    pub sli: Option<f64>,
    /// `1 - (bad / total) / error_budget`: 1 when nothing was spent, negative once overspent.
    pub error_budget_remaining: f64,
    /// `(bad / total) / error_budget`: 1 spends the budget exactly over the SLO window;
    /// `null` when nothing was counted.
    pub burn_rate: Option<f64>,
}

impl WindowReport {
    fn new(seconds: u64, uptime: u64, total: u64, bad: u64, budget: f64) -> WindowReport {
        let bad_ratio = (total > 0).then(|| bad as f64 / total as f64);
        let burn_rate = bad_ratio.map(|ratio| ratio / budget);
        WindowReport {
            window: duration_label(seconds),
            seconds,
            complete: uptime >= seconds,
            total,
            bad,
            sli: bad_ratio.map(|ratio| 1.0 - ratio),
            error_budget_remaining: 1.0 - burn_rate.unwrap_or(0.0),
            burn_rate,
        }
    }
}

/// `seconds` as the largest whole Prometheus duration unit: `30d`, `6h`, `5m`, `90s`.
pub fn duration_label(seconds: u64) -> String {
    match seconds {
        0 => "0s".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock the test moves.
    #[derive(Default)]
    struct ManualClock(AtomicU64);

    impl ManualClock {
        fn set(&self, seconds: u64) {
            self.0.store(seconds, Ordering::SeqCst);
        }
    }

    impl Clock for ManualClock {
        fn now_seconds(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    const DAY: u64 = 86_400;

    fn hello_slos() -> Vec<Slo> {
        vec![
            Slo::new("availability", "not 5xx", 0.999, Sli::availability()),
            Slo::new("latency", "under 100 ms", 0.99, Sli::latency(0.1)),
        ]
    }

    fn tracked(slos: &[Slo]) -> (Budgets, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        (Budgets::with_clock(slos, clock.clone()), clock)
    }

    fn window<'a>(report: &'a Report, slo: usize, label: &str) -> &'a WindowReport {
        report.slos[slo]
            .windows
            .iter()
            .find(|window| window.window == label)
            .unwrap_or_else(|| panic!("window {label} is reported"))
    }

    const FAST: Duration = Duration::from_millis(5);

    #[test]
    fn availability_counts_5xx_as_bad_and_4xx_as_good() {
        let sli = Sli::availability();
        for status in [500, 502, 503, 504, 599] {
            assert_eq!(classify(&sli, "/a", status, FAST), Verdict::Bad, "{status}");
        }
        for status in [200, 204, 301, 400, 404, 413, 429, 499] {
            assert_eq!(
                classify(&sli, "/a", status, FAST),
                Verdict::Good,
                "{status}"
            );
        }
    }

    #[test]
    fn probes_are_ignored_and_unmatched_requests_count() {
        let sli = Sli::availability();
        assert_eq!(classify(&sli, "/livez", 503, FAST), Verdict::Ignored);
        assert_eq!(classify(&sli, "/readyz", 503, FAST), Verdict::Ignored);
        assert_eq!(
            classify(&sli, UNMATCHED_ROUTE, 404, FAST),
            Verdict::Good,
            "an unmatched 404 is the client's fault, and counts"
        );
        let only = Sli::Availability {
            routes: Routes::Only(&["/hello/{username}"]),
        };
        assert_eq!(
            classify(&only, "/hello/{username}", 500, FAST),
            Verdict::Bad
        );
        assert_eq!(classify(&only, "/other", 500, FAST), Verdict::Ignored);
        assert_eq!(
            classify(&only, UNMATCHED_ROUTE, 404, FAST),
            Verdict::Ignored
        );
    }

    #[test]
    fn latency_is_bad_only_above_the_threshold_whatever_the_status() {
        let sli = Sli::latency(0.1);
        assert_eq!(
            classify(&sli, "/a", 200, Duration::from_millis(100)),
            Verdict::Good,
            "the bucket bound itself is good, as `le` reads it"
        );
        assert_eq!(
            classify(&sli, "/a", 200, Duration::from_millis(101)),
            Verdict::Bad
        );
        assert_eq!(classify(&sli, "/a", 500, FAST), Verdict::Good);
        assert_eq!(
            classify(&sli, "/livez", 200, Duration::from_secs(3)),
            Verdict::Ignored
        );
    }

    #[test]
    fn ratio_slos_ignore_requests_and_count_reported_events() {
        let slos = [Slo::new(
            "delivery",
            "messages delivered",
            0.99,
            Sli::Ratio {
                bad: "chat_messages_total{outcome=\"failed\"}",
                total: "chat_messages_total",
            },
        )];
        let (budgets, _clock) = tracked(&slos);
        budgets.record_request("/a", 500, FAST);
        assert!(budgets.record_ratio("delivery", 100, 2));
        assert!(!budgets.record_ratio("nope", 1, 1));
        let report = budgets.report();
        let w = window(&report, 0, "5m");
        assert_eq!((w.total, w.bad), (100, 2));
        assert!((w.burn_rate.unwrap() - 2.0).abs() < 1e-9);
        assert!((w.error_budget_remaining + 1.0).abs() < 1e-9, "overspent");

        // A request SLO is not fed by `record_ratio`.
        let (budgets, _clock) = tracked(&hello_slos());
        assert!(!budgets.record_ratio("availability", 1, 1));
    }

    #[test]
    fn budget_arithmetic() {
        let (budgets, _clock) = tracked(&hello_slos());
        let report = budgets.report();
        let empty = window(&report, 0, "30d");
        assert_eq!((empty.total, empty.sli, empty.burn_rate), (0, None, None));
        assert!((empty.error_budget_remaining - 1.0).abs() < 1e-12);

        for i in 0..2000 {
            let status = if i < 1 { 500 } else { 200 };
            budgets.record_request("/hello/{username}", status, FAST);
        }
        let report = budgets.report();
        let w = window(&report, 0, "30d");
        assert_eq!((w.total, w.bad), (2000, 1));
        assert!((w.sli.unwrap() - 0.9995).abs() < 1e-12);
        assert!((w.burn_rate.unwrap() - 0.5).abs() < 1e-9);
        assert!((w.error_budget_remaining - 0.5).abs() < 1e-9);
        assert_eq!(report.slos[1].windows.last().unwrap().bad, 0);
        assert_eq!(report.slos[0].window, "30d");
        assert_eq!(report.slos[0].window_seconds, 30 * DAY);
    }

    #[test]
    fn windows_roll_over_and_short_uptime_is_marked_incomplete() {
        let (budgets, clock) = tracked(&hello_slos());
        for _ in 0..10 {
            budgets.record_request("/a", 200, FAST);
        }
        budgets.record_request("/a", 500, FAST);

        clock.set(6 * 60 + 30);
        for _ in 0..4 {
            budgets.record_request("/a", 200, FAST);
        }
        let report = budgets.report();
        let five = window(&report, 0, "5m");
        assert_eq!(
            (five.total, five.bad),
            (4, 0),
            "minute 0 is out of the 5m window"
        );
        assert!(five.complete);
        let hour = window(&report, 0, "1h");
        assert_eq!((hour.total, hour.bad), (15, 1));
        assert!(!hour.complete, "the process has run 6.5 minutes");

        // Two hours later nothing is in the short windows; everything is in the day.
        clock.set(2 * 3600 + 6 * 60 + 30);
        let report = budgets.report();
        assert_eq!(window(&report, 0, "1h").total, 0);
        assert!(window(&report, 0, "1h").complete);
        assert_eq!(window(&report, 0, "6h").total, 15);
        assert_eq!(window(&report, 0, "1d").total, 15);

        // Past the SLO window (and far past both rings) everything has left, without panics
        // from the gap.
        clock.set(31 * DAY);
        budgets.record_request("/a", 500, FAST);
        let report = budgets.report();
        let month = window(&report, 0, "30d");
        assert!(month.complete);
        assert_eq!((month.total, month.bad), (1, 1));
        assert_eq!(window(&report, 0, "3d").total, 1);
    }

    #[test]
    fn the_day_window_rounds_up_to_whole_hours() {
        let (budgets, clock) = tracked(&hello_slos());
        clock.set(DAY + 1800);
        budgets.record_request("/a", 200, FAST);
        clock.set(2 * DAY + 600);
        budgets.record_request("/a", 200, FAST);
        // The day window starts at the start of the hour 24 hours before this one (day 1, 00:00),
        // so it holds both; at day 2 01:00 the first (day 1 00:30) has left.
        assert_eq!(window(&budgets.report(), 0, "1d").total, 2);
        clock.set(2 * DAY + 3600);
        assert_eq!(window(&budgets.report(), 0, "1d").total, 1);
    }

    #[test]
    fn memory_is_fixed_at_construction_and_small() {
        let (budgets, clock) = tracked(&hello_slos());
        let before = budgets.memory_bytes();
        // Two 30-day SLOs: (361 + 721) slots of 16 bytes each, plus the counters.
        assert!(before < 2 * 20 * 1024, "{before} bytes");
        assert!(before >= 2 * (361 + 721) * 16, "{before} bytes");
        for minute in 0..(40 * 24 * 60) {
            clock.set(minute * 60);
            budgets.record_request("/a", 200, FAST);
        }
        assert_eq!(budgets.memory_bytes(), before);
        let report = budgets.report();
        assert_eq!(
            window(&report, 0, "5m").total,
            6,
            "rounded up to whole minutes"
        );
        assert_eq!(window(&report, 0, "30d").total, 30 * 24 * 60 + 60);
    }

    #[test]
    fn duration_labels() {
        assert_eq!(duration_label(300), "5m");
        assert_eq!(duration_label(7200), "2h");
        assert_eq!(duration_label(30 * DAY), "30d");
        assert_eq!(duration_label(90), "90s");
    }
}
