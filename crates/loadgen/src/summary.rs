//! What a run measured: the raw recording each connection keeps, and the summary made from it.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Responses and failures seen by one connection (or, merged, by a whole run) in the window.
#[derive(Debug, Clone)]
pub struct Recording {
    /// Latency of every response, any status, in microseconds.
    latency_us: Histogram<u64>,
    /// Responses with a 2xx status.
    successes: u64,
    /// Non-2xx responses and transport failures, by kind (`status 503`, `timeout`, `io`).
    errors: BTreeMap<String, u64>,
}

impl Default for Recording {
    fn default() -> Self {
        Recording {
            // 1 µs to 60 s at three significant digits.
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)
                .expect("constant histogram bounds are valid"),
            successes: 0,
            errors: BTreeMap::new(),
        }
    }
}

impl Recording {
    /// A response with `status` that took `latency`; a success when 2xx.
    pub fn response(&mut self, status: u16, latency: Duration) {
        self.response_if((200..300).contains(&status), status, latency);
    }

    /// A response with `status` that took `latency`; a success when `ok`, else an error of kind
    /// `status N`.
    pub fn response_if(&mut self, ok: bool, status: u16, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.saturating_record(micros.max(1));
        if ok {
            self.successes += 1;
        } else {
            self.failure(format!("status {status}"));
        }
    }

    /// Successes and errors so far.
    pub fn requests(&self) -> u64 {
        self.successes + self.errors.values().sum::<u64>()
    }

    /// A request that got no response: `kind` says why.
    pub fn failure(&mut self, kind: String) {
        *self.errors.entry(kind).or_default() += 1;
    }

    /// Adds `other` into this recording.
    pub fn merge(&mut self, other: &Recording) {
        // Both histograms share the same bounds, so adding cannot fail.
        self.latency_us
            .add(&other.latency_us)
            .expect("recordings share histogram bounds");
        self.successes += other.successes;
        for (kind, count) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += count;
        }
    }
}

/// A run's result, as `loadgen http` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Requests completed in the measured window: successes and errors.
    pub requests: u64,
    /// Non-2xx responses and transport failures. Any error makes the run suspect.
    pub errors: u64,
    /// Errors by kind.
    pub error_kinds: BTreeMap<String, u64>,
    /// Length of the measured window.
    pub seconds: f64,
    /// Successful (2xx) requests per second.
    pub rps: f64,
    /// Latency percentiles over all responses, milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest response.
    pub max_ms: f64,
    /// CPU seconds each observed process used in the window (`loadgen`, `server`).
    pub cpu_seconds: BTreeMap<String, f64>,
    /// The server's peak resident set during the run (fixtures, warm-up and window), bytes,
    /// when observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_peak_rss_bytes: Option<u64>,
}

impl Summary {
    /// CPU microseconds `process` spent per completed request, when it was observed.
    pub fn cpu_us_per_request(&self, process: &str) -> Option<f64> {
        let seconds = self.cpu_seconds.get(process)?;
        (self.requests > 0).then(|| seconds * 1e6 / self.requests as f64)
    }
}

impl Summary {
    /// Summarises `recording`, taken over a measured window of `window`.
    pub fn new(recording: &Recording, window: Duration) -> Summary {
        let errors: u64 = recording.errors.values().sum();
        let seconds = window.as_secs_f64();
        let ms = |quantile: f64| recording.latency_us.value_at_quantile(quantile) as f64 / 1000.0;
        Summary {
            requests: recording.successes + errors,
            errors,
            error_kinds: recording.errors.clone(),
            seconds,
            rps: if seconds > 0.0 {
                recording.successes as f64 / seconds
            } else {
                0.0
            },
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: recording.latency_us.max() as f64 / 1000.0,
            cpu_seconds: BTreeMap::new(),
            server_peak_rss_bytes: None,
        }
    }
}

/// The run with the median requests/s (the upper middle for an even count); `None` when empty.
pub fn median_by_rps(runs: &[Summary]) -> Option<&Summary> {
    let mut sorted: Vec<&Summary> = runs.iter().collect();
    sorted.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    sorted.get(sorted.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within the histogram's three significant digits (about 0.1%), with room.
    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() <= expected * 0.002 + 1e-9
    }

    #[test]
    fn a_summary_counts_successes_per_second_and_reads_percentiles_in_ms() {
        let mut recording = Recording::default();
        // 1 ms … 1000 ms, one response each; the slowest ten are errors.
        for ms in 1..=1000u64 {
            let status = if ms > 990 { 503 } else { 200 };
            recording.response(status, Duration::from_millis(ms));
        }
        recording.failure("io".to_owned());
        let summary = Summary::new(&recording, Duration::from_secs(2));
        assert_eq!(summary.requests, 1001);
        assert_eq!(summary.errors, 11);
        assert_eq!(summary.error_kinds.get("status 503"), Some(&10));
        assert_eq!(summary.error_kinds.get("io"), Some(&1));
        assert!(close(summary.rps, 495.0), "rps {}", summary.rps);
        assert!(close(summary.p50_ms, 500.0), "p50 {}", summary.p50_ms);
        assert!(close(summary.p90_ms, 900.0), "p90 {}", summary.p90_ms);
        assert!(close(summary.p99_ms, 990.0), "p99 {}", summary.p99_ms);
        assert!(close(summary.p999_ms, 999.0), "p999 {}", summary.p999_ms);
        assert!(close(summary.max_ms, 1000.0), "max {}", summary.max_ms);
        assert_eq!(summary.cpu_us_per_request("server"), None);
        let mut summary = summary;
        summary.cpu_seconds.insert("server".to_owned(), 1.001);
        assert!(close(
            summary.cpu_us_per_request("server").expect("observed"),
            1000.0
        ));
    }

    #[test]
    fn merging_recordings_adds_counts_and_latencies() {
        let mut fast = Recording::default();
        let mut slow = Recording::default();
        for _ in 0..100 {
            fast.response(204, Duration::from_micros(100));
            slow.response(204, Duration::from_micros(10_000));
        }
        slow.failure("timeout".to_owned());
        fast.merge(&slow);
        let summary = Summary::new(&fast, Duration::from_secs(1));
        assert_eq!(summary.requests, 201);
        assert_eq!(summary.errors, 1);
        assert!(close(summary.rps, 200.0));
        assert!(close(summary.p50_ms, 0.1), "p50 {}", summary.p50_ms);
        assert!(close(summary.p99_ms, 10.0), "p99 {}", summary.p99_ms);
    }

    #[test]
    fn the_median_is_chosen_by_requests_per_second() {
        let run = |rps: f64, p50_ms: f64| Summary {
            rps,
            p50_ms,
            ..Summary::new(&Recording::default(), Duration::from_secs(1))
        };
        let runs = [run(300.0, 1.0), run(100.0, 2.0), run(200.0, 3.0)];
        let median = median_by_rps(&runs).expect("three runs");
        assert_eq!((median.rps, median.p50_ms), (200.0, 3.0));
        assert_eq!(median_by_rps(&[]), None);
        assert_eq!(median_by_rps(&runs[..1]).map(|s| s.rps), Some(300.0));
    }
}
