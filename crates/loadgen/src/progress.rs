//! Progress of a long benchmark on stderr, with an estimate of the time left.
//!
//! On a terminal, one status line (a bar, the step, the time left) stays at the bottom and is
//! redrawn in place, and result lines are printed above it. Anywhere else (CI, a file, a pipe)
//! each step is one plain line without control characters, so a log reads top to bottom:
//! `[12/48] hello (memory) GET /hello/{username}, round 2/3 … about 9 min left`.
//!
//! The estimate: every step has a planned length (its warm-up and measured window); the time
//! left is the planned length of the steps to come, scaled by how long the steps done so far
//! took against their plan, so fixtures, start-up and a busy machine are counted in.
//!
//! Hand-written rather than `indicatif`: one line redrawn at each step is all it does, and
//! `indicatif` would add four crates (console, unicode-width, unit-prefix and itself) for it,
//! while its hidden mode for non-terminals would still leave the plain lines to write here.

use std::collections::VecDeque;
use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

/// A run's steps and how far it is.
#[derive(Debug)]
pub struct Progress {
    /// Planned lengths of the steps not started yet, in order.
    remaining: VecDeque<Duration>,
    /// Steps started so far.
    started: usize,
    /// The planned length of the running step.
    running: Option<Duration>,
    /// The planned length of the steps finished.
    planned_done: Duration,
    /// When the first step started.
    clock: Option<Instant>,
    /// Redraw a status line in place (stderr is a terminal).
    terminal: bool,
    /// The status line on screen, to redraw under a result line.
    status: Option<String>,
}

impl Progress {
    /// Progress through steps of these planned lengths, on stderr.
    pub fn new(plan: impl IntoIterator<Item = Duration>) -> Progress {
        Progress::with_terminal(plan, std::io::stderr().is_terminal())
    }

    fn with_terminal(plan: impl IntoIterator<Item = Duration>, terminal: bool) -> Progress {
        Progress {
            remaining: plan.into_iter().collect(),
            started: 0,
            running: None,
            planned_done: Duration::ZERO,
            clock: None,
            terminal,
            status: None,
        }
    }

    /// Ends the running step and starts the next, described by `label`; shows where the run is.
    pub fn step(&mut self, label: &str) {
        let elapsed = self.clock.get_or_insert_with(Instant::now).elapsed();
        let line = self.advance(label, elapsed);
        if self.terminal {
            self.status = Some(line);
            self.redraw(None);
        } else {
            eprintln!("{line}");
        }
    }

    /// `steps` planned steps that will not run (a ladder that stopped early).
    pub fn skip(&mut self, steps: usize) {
        for _ in 0..steps.min(self.remaining.len()) {
            self.remaining.pop_front();
        }
    }

    /// Steps beyond the plan that run next (a rate run again).
    pub fn insert(&mut self, steps: impl IntoIterator<Item = Duration>) {
        let steps: Vec<Duration> = steps.into_iter().collect();
        for step in steps.into_iter().rev() {
            self.remaining.push_front(step);
        }
    }

    /// A result line: on a terminal above the status line, elsewhere as it is.
    pub fn println(&mut self, line: &str) {
        if self.terminal && self.status.is_some() {
            self.redraw(Some(line));
        } else {
            eprintln!("{line}");
        }
    }

    /// Ends the last step; on a terminal, leaves the screen without a status line.
    pub fn finish(&mut self) {
        if self.terminal && self.status.take().is_some() {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }

    /// Moves to the next step at `elapsed` since the first began; returns its line.
    fn advance(&mut self, label: &str, elapsed: Duration) -> String {
        if let Some(done) = self.running.take() {
            self.planned_done += done;
        }
        self.running = self.remaining.pop_front();
        self.started += 1;
        let total = self.started + self.remaining.len();
        // The running step counts as still to do.
        let planned_left =
            self.running.unwrap_or_default() + self.remaining.iter().sum::<Duration>();
        let left = time_left(self.planned_done, planned_left, elapsed);
        match self.terminal {
            true => status_line(self.started, total, label, left),
            false => plain_line(self.started, total, label, left),
        }
    }

    /// Clears the status line, prints `line` if any, and draws the status line again.
    fn redraw(&self, line: Option<&str>) {
        let mut stderr = std::io::stderr().lock();
        // Clear the line, carriage return: the status line is redrawn where it stood.
        let _ = write!(stderr, "\r\x1b[2K");
        if let Some(line) = line {
            let _ = writeln!(stderr, "{line}");
        }
        if let Some(status) = &self.status {
            let _ = write!(stderr, "{status}");
        }
        let _ = stderr.flush();
    }
}

/// The time left: `planned_left` scaled by how long the steps done took (`elapsed`) against
/// their plan (`planned_done`); the plan alone before any step is done.
pub fn time_left(planned_done: Duration, planned_left: Duration, elapsed: Duration) -> Duration {
    if planned_done.is_zero() {
        return planned_left;
    }
    planned_left.mul_f64(elapsed.as_secs_f64() / planned_done.as_secs_f64())
}

/// `about 9 min left`: minutes from 90 s on, else seconds rounded up to 5.
pub fn about(left: Duration) -> String {
    let seconds = left.as_secs_f64();
    if seconds >= 90.0 {
        format!("about {:.0} min left", seconds / 60.0)
    } else if seconds > 0.0 {
        format!("about {:.0} s left", (seconds / 5.0).ceil() * 5.0)
    } else {
        "almost done".to_owned()
    }
}

/// The line of a step where stderr is no terminal.
pub fn plain_line(step: usize, total: usize, label: &str, left: Duration) -> String {
    format!("[{step}/{total}] {label} … {}", about(left))
}

/// Characters of the terminal's bar.
const BAR_WIDTH: usize = 20;

/// The terminal's status line: a bar of the steps started, then the plain line.
fn status_line(step: usize, total: usize, label: &str, left: Duration) -> String {
    let filled = (step.saturating_sub(1) * BAR_WIDTH)
        .checked_div(total)
        .unwrap_or(0)
        .min(BAR_WIDTH);
    format!(
        "{}{} {}",
        "█".repeat(filled),
        "░".repeat(BAR_WIDTH - filled),
        plain_line(step, total, label, left)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn the_time_left_scales_the_plan_by_the_pace_so_far() {
        // Before any step is done, the plan is the estimate.
        assert_eq!(time_left(secs(0), secs(600), secs(0)), secs(600));
        // Steps planned at 100 s took 150 s: the 600 s to come will take 900.
        assert_eq!(time_left(secs(100), secs(600), secs(150)), secs(900));
        assert_eq!(time_left(secs(100), secs(0), secs(150)), secs(0));
    }

    #[test]
    fn the_time_left_reads_as_minutes_or_seconds() {
        assert_eq!(about(secs(540)), "about 9 min left");
        assert_eq!(about(secs(89)), "about 90 s left");
        assert_eq!(about(Duration::from_millis(41_200)), "about 45 s left");
        assert_eq!(about(secs(0)), "almost done");
    }

    #[test]
    fn plain_lines_count_steps_and_estimate_from_the_elapsed_time() {
        // Four steps of 10 s each; the first took 15 s, so the three to come take 45.
        let mut progress = Progress::with_terminal([secs(10); 4], false);
        assert_eq!(
            progress.advance("hello (memory) GET /hello/{username}, round 1/2", secs(0)),
            "[1/4] hello (memory) GET /hello/{username}, round 1/2 … about 40 s left"
        );
        assert_eq!(
            progress.advance("hello (memory) PUT /hello/{username}, round 1/2", secs(15)),
            "[2/4] hello (memory) PUT /hello/{username}, round 1/2 … about 45 s left"
        );
        // A ladder that stops early: the skipped step leaves the count and the estimate.
        progress.skip(1);
        let line = progress.advance("last", secs(30));
        assert_eq!(line, "[3/3] last … about 15 s left");
        assert!(!line.chars().any(char::is_control), "{line:?}");
        // Steps beyond the plan come next and count.
        progress.insert([secs(10), secs(10)]);
        assert_eq!(
            progress.advance("again", secs(45)),
            "[4/5] again … about 30 s left"
        );
        // More steps than planned still count up, with nothing left to estimate.
        progress.skip(5);
        assert_eq!(
            progress.advance("extra", secs(60)),
            "[5/5] extra … almost done"
        );
    }

    #[test]
    fn a_terminal_gets_a_bar_in_front_of_the_same_line() {
        let mut progress = Progress::with_terminal([secs(10); 4], true);
        progress.advance("first", secs(0));
        progress.advance("second", secs(10));
        let line = progress.advance("third", secs(20));
        assert_eq!(
            line,
            format!(
                "{}{} [3/4] third … about 20 s left",
                "█".repeat(10),
                "░".repeat(10)
            )
        );
    }
}
