//! The open-loop schedule: `rate` messages per second in total, spread evenly over `publishers`
//! publishers, interleaved so the whole stream is evenly spaced. Message `k` of publisher `g`
//! is due at `start + (k * publishers + g) / rate`. Publishers send what is due whatever the
//! replies, so slow answers cannot slow the offered load down.
//!
//! A [`Metronome`] wakes each publisher when its next message is due. Not tokio's timers: they
//! fire on a 1 ms tick, so a message would leave up to 1 ms after it was due, and since latency
//! counts from the due time, the generator's own timer would be up to 1 ms of every latency
//! (half the 2 ms bound of a 10-member room). The metronome is one thread sleeping with the
//! kernel's high-resolution timer (about 50 µs of slack).
//!
//! A tick is a hint, not a verdict: a tick that lands while its publisher is still busy with an
//! earlier slot is kept (tokio's `Notify` stores one permit), and would end the publisher's next
//! wait at once, before that slot is due. [`Ticker::until`] therefore checks the clock after
//! every wake-up, so the contract is "a wait for a due time never returns before it" however
//! late the publisher or the metronome runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::Notify;

use crate::chat::clock;

/// Where the metronome and its publishers read the time, and how the metronome sleeps; injected
/// so the schedule can be tested on a clock the test moves.
pub trait Clock: Send + Sync + 'static {
    /// Nanoseconds since the clock's base.
    fn now_ns(&self) -> u64;
    /// Blocks the calling thread until [`Clock::now_ns`] reaches `ns`.
    fn sleep_until(&self, ns: u64);
}

/// The process's monotonic clock ([`crate::chat::clock`]) and the kernel's high-resolution sleep.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        clock::now_ns()
    }

    fn sleep_until(&self, ns: u64) {
        // `sleep` may return early on a signal; loop until the time has really come.
        loop {
            let now = clock::now_ns();
            if now >= ns {
                return;
            }
            std::thread::sleep(Duration::from_nanos(ns - now));
        }
    }
}

/// One publisher's schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Nanoseconds since the clock base of the first message of the whole stream.
    pub start_ns: u64,
    /// No message is due at or after this (nanoseconds since the clock base).
    pub end_ns: u64,
    /// Messages per second over all publishers.
    pub rate: f64,
    /// How many publishers share the rate.
    pub publishers: u32,
    /// This publisher's index, `0..publishers`.
    pub index: u32,
}

impl Schedule {
    /// When message `k` of this publisher is due; `None` once that is past the end.
    pub fn due_ns(&self, k: u64) -> Option<u64> {
        let slot = k as f64 * f64::from(self.publishers) + f64::from(self.index);
        let due = self.start_ns + (slot * 1e9 / self.rate) as u64;
        (due < self.end_ns).then_some(due)
    }
}

/// Wakes publisher `g` of `publishers` when its messages fall due; see the module
/// documentation. Ticks stop at the end of the schedule or when the metronome is dropped.
pub struct Metronome {
    clock: Arc<dyn Clock>,
    wakers: Arc<[Notify]>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Metronome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metronome")
            .field("publishers", &self.wakers.len())
            .finish_non_exhaustive()
    }
}

impl Metronome {
    /// A metronome for `publishers` publishers on `clock`, not yet ticking.
    pub fn new(publishers: u32, clock: Arc<dyn Clock>) -> Metronome {
        Metronome {
            clock,
            wakers: (0..publishers).map(|_| Notify::new()).collect(),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        }
    }

    /// What each publisher waits on: `tickers()[g]` is publisher `g`'s.
    pub fn tickers(&self) -> Arc<[Ticker]> {
        (0..self.wakers.len())
            .map(|index| Ticker {
                clock: self.clock.clone(),
                wakers: self.wakers.clone(),
                index,
            })
            .collect()
    }

    /// Ticks the whole stream from `start_ns` to `end_ns` at `rate` messages per second: slot
    /// `s` is due at `start + s / rate` and belongs to publisher `s % publishers`, as in
    /// [`Schedule`].
    pub fn start(&mut self, start_ns: u64, end_ns: u64, rate: f64) -> std::io::Result<()> {
        let clock = self.clock.clone();
        let wakers = self.wakers.clone();
        let stop = self.stop.clone();
        let publishers = u32::try_from(wakers.len()).unwrap_or(u32::MAX);
        let thread = std::thread::Builder::new()
            .name("metronome".into())
            .spawn(move || {
                for slot in 0u64.. {
                    let index = (slot % u64::from(publishers)) as u32;
                    let schedule = Schedule {
                        start_ns,
                        end_ns,
                        rate,
                        publishers,
                        index,
                    };
                    let Some(due) = schedule.due_ns(slot / u64::from(publishers)) else {
                        // Keeps time to the end of the window, as a sleeping thread that a
                        // drop waits for at most one slot's length.
                        clock.sleep_until(end_ns);
                        break;
                    };
                    clock.sleep_until(due);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    wakers[index as usize].notify_one();
                }
            })?;
        self.thread = Some(thread);
        Ok(())
    }
}

/// One publisher's side of the metronome.
pub struct Ticker {
    clock: Arc<dyn Clock>,
    wakers: Arc<[Notify]>,
    index: usize,
}

impl Ticker {
    /// Returns once `due_ns` has come: at once when it already has, else at the first tick at or
    /// after it. Stale ticks (see the module documentation) only make it look at the clock again.
    pub async fn until(&self, due_ns: u64) {
        while self.clock.now_ns() < due_ns {
            self.wakers[self.index].notified().await;
        }
    }
}

impl Drop for Metronome {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::{Condvar, Mutex};

    use futures::FutureExt;

    /// A clock that moves only when the test says so. The metronome's thread sleeps on it;
    /// [`ManualClock::advance_to`] returns once that thread has ticked everything due by then
    /// and is asleep again (or done), so the test knows which ticks were given without
    /// looking at the scheduler.
    #[derive(Default)]
    struct ManualClock {
        state: Mutex<ManualState>,
        changed: Condvar,
    }

    #[derive(Default)]
    struct ManualState {
        now_ns: u64,
        /// What the metronome sleeps until, while it sleeps.
        sleeping_until: Option<u64>,
        /// The test is over: the metronome stops sleeping.
        done: bool,
    }

    impl ManualClock {
        fn advance_to(&self, ns: u64) {
            let mut state = self.state.lock().unwrap();
            state.now_ns = ns;
            self.changed.notify_all();
            let _state = self
                .changed
                .wait_while(state, |state| {
                    !state.done && state.sleeping_until.is_none_or(|until| until <= ns)
                })
                .unwrap();
        }

        fn finish(&self) {
            self.state.lock().unwrap().done = true;
            self.changed.notify_all();
        }
    }

    impl Clock for ManualClock {
        fn now_ns(&self) -> u64 {
            self.state.lock().unwrap().now_ns
        }

        fn sleep_until(&self, ns: u64) {
            let mut state = self.state.lock().unwrap();
            state.sleeping_until = Some(ns);
            self.changed.notify_all();
            state = self
                .changed
                .wait_while(state, |state| state.now_ns < ns && !state.done)
                .unwrap();
            state.sleeping_until = None;
            self.changed.notify_all();
        }
    }

    /// 4 publishers at 2,000 messages/s for 20 ms: 40 slots 500 µs apart, 10 each.
    const START: u64 = 1_000_000;
    const END: u64 = START + 20_000_000;
    const RATE: f64 = 2000.0;

    fn schedule(index: u32) -> Schedule {
        Schedule {
            start_ns: START,
            end_ns: END,
            rate: RATE,
            publishers: 4,
            index,
        }
    }

    fn ticking(clock: &Arc<ManualClock>) -> (Metronome, Arc<[Ticker]>) {
        let mut metronome = Metronome::new(4, clock.clone());
        let tickers = metronome.tickers();
        metronome.start(START, END, RATE).unwrap();
        // Returns once the thread sleeps until the first slot.
        clock.advance_to(0);
        (metronome, tickers)
    }

    #[test]
    fn each_publisher_is_let_through_at_each_of_its_slots_and_not_before() {
        let clock = Arc::new(ManualClock::default());
        let (metronome, tickers) = ticking(&clock);
        let mut next = [0u64; 4];
        for slot in 0..40u32 {
            let owner = slot % 4;
            let due = schedule(owner).due_ns(u64::from(slot / 4)).unwrap();
            // Just before the slot, nobody's next wait is over.
            clock.advance_to(due - 1);
            for (index, ticker) in tickers.iter().enumerate() {
                let k = next[index];
                let Some(their_due) = schedule(index as u32).due_ns(k) else {
                    continue;
                };
                assert!(
                    ticker.until(their_due).now_or_never().is_none(),
                    "publisher {index} let through for its message {k} before it was due (slot {slot})"
                );
            }
            // At the slot, its owner's wait is over, and the others' still are not.
            clock.advance_to(due);
            for (index, ticker) in tickers.iter().enumerate() {
                let their_due = schedule(index as u32).due_ns(next[index]);
                let through = their_due.is_some_and(|d| ticker.until(d).now_or_never().is_some());
                assert_eq!(
                    through,
                    index as u32 == owner,
                    "slot {slot}: publisher {index} let through: {through}"
                );
            }
            next[owner as usize] += 1;
        }
        assert_eq!(next, [10; 4]);
        clock.finish();
        drop(metronome);
    }

    #[test]
    fn a_late_publisher_sends_what_is_due_and_its_next_wait_still_holds_until_its_slot() {
        let clock = Arc::new(ManualClock::default());
        let (metronome, tickers) = ticking(&clock);
        let late = &tickers[3];
        let own = schedule(3);
        // Publisher 3 is busy while its slots 0, 1 and 2 all tick: the ticks it missed are
        // kept as a permit that would end its next wait at once.
        clock.advance_to(own.due_ns(2).unwrap());
        for k in 0..3 {
            assert!(late.until(own.due_ns(k).unwrap()).now_or_never().is_some());
        }
        // Its next message is not due yet: whatever stale ticks it holds, the wait holds.
        let next = own.due_ns(3).unwrap();
        let mut wait = Box::pin(late.until(next));
        assert!((&mut wait).now_or_never().is_none(), "let through early");
        clock.advance_to(next - 1);
        assert!(
            (&mut wait).now_or_never().is_none(),
            "let through 1 ns early"
        );
        clock.advance_to(next);
        assert!(
            (&mut wait).now_or_never().is_some(),
            "not let through at its slot"
        );
        clock.finish();
        drop(metronome);
    }

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
