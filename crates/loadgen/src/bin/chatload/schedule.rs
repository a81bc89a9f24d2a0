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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock;

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

/// Wakes publisher `g` of `publishers` when its messages fall due; see the module
/// documentation. Ticks stop at the end of the schedule or when the metronome is dropped.
#[derive(Debug)]
pub(crate) struct Metronome {
    wakers: Arc<[Notify]>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Metronome {
    /// A metronome for `publishers` publishers, not yet ticking.
    pub(crate) fn new(publishers: u32) -> Metronome {
        Metronome {
            wakers: (0..publishers).map(|_| Notify::new()).collect(),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        }
    }

    /// What publisher `index` waits on; a tick that comes while it is busy is kept for its
    /// next wait.
    pub(crate) fn wakers(&self) -> Arc<[Notify]> {
        self.wakers.clone()
    }

    /// Ticks the whole stream from `start_ns` to `end_ns` at `rate` messages per second: slot
    /// `s` is due at `start + s / rate` and belongs to publisher `s % publishers`, as in
    /// [`Schedule`].
    pub(crate) fn start(&mut self, start_ns: u64, end_ns: u64, rate: f64) -> std::io::Result<()> {
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
                        break;
                    };
                    let now = clock::now_ns();
                    if due > now {
                        std::thread::sleep(Duration::from_nanos(due - now));
                    }
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

    #[tokio::test]
    async fn the_metronome_wakes_each_publisher_for_each_of_its_slots_and_not_before() {
        // 4 publishers, 2,000 messages/s for 20 ms: 40 slots, 10 each.
        let start_ns = clock::now_ns() + 5_000_000;
        let end_ns = start_ns + 20_000_000;
        let mut metronome = Metronome::new(4);
        let wakers = metronome.wakers();
        metronome.start(start_ns, end_ns, 2000.0).unwrap();
        let schedule = Schedule {
            start_ns,
            end_ns,
            rate: 2000.0,
            publishers: 4,
            index: 3,
        };
        let mut k = 0;
        while let Some(due) = schedule.due_ns(k) {
            wakers[3].notified().await;
            let now = clock::now_ns();
            assert!(now >= due, "woken {} ns early for slot {k}", due - now);
            // Every slot already due is this wake-up's to send.
            while schedule.due_ns(k).is_some_and(|due| due <= now) {
                k += 1;
            }
        }
        assert_eq!(k, 10);
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
