//! `loadgen soak`: one service under an open-loop load at a fixed rate (by default for a minute),
//! its RSS sampled every second; fails on any error or on memory that keeps growing. Also the
//! parts `chatload soak` shares: the slope, the verdict and the `bench:soak` table.
//!
//! The load is the service's mix ([`Kind::Mix`]): 90% reads of the fixtures, 10% overwrites of
//! them, so nothing new is stored and a server that does not leak has no reason to grow.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::cli::{SoakArgs, Storage, TlsMode};
use crate::cpu::CpuMeter;
use crate::http::{self, Load, RateLoad};
use crate::report;
use crate::scenario::{Kind, Service};
use crate::target::{ScratchDir, TargetSpec};

/// Warm-up before the peak measurement of `--peak-fraction`.
const PEAK_WARMUP: Duration = Duration::from_secs(1);

/// Soaks shorter than this are marked as smoke runs in the table, not measurements.
pub const FULL_SOAK: Duration = Duration::from_secs(60);

/// The server's resident set at one moment of the soak.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the load started.
    pub at_secs: f64,
    /// `VmRSS`, bytes.
    pub rss_bytes: u64,
}

/// The least-squares line of RSS over time: `rss_bytes ≈ intercept_bytes + bytes_per_sec × t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// RSS the line gives at second 0, bytes.
    pub intercept_bytes: f64,
    /// Its slope.
    pub bytes_per_sec: f64,
}

impl Fit {
    /// The slope in KiB per minute, the unit of the verdict and the table.
    pub fn kib_per_min(&self) -> f64 {
        self.bytes_per_sec * 60.0 / 1024.0
    }
}

/// The least-squares line through the samples taken at or after `from_secs`; `None` with fewer
/// than three of them (no trend to speak of).
pub fn fit(samples: &[Sample], from_secs: f64) -> Option<Fit> {
    let kept: Vec<(f64, f64)> = samples
        .iter()
        .filter(|sample| sample.at_secs >= from_secs)
        .map(|sample| (sample.at_secs, sample.rss_bytes as f64))
        .collect();
    if kept.len() < 3 {
        return None;
    }
    let count = kept.len() as f64;
    let mean_x = kept.iter().map(|(x, _)| x).sum::<f64>() / count;
    let mean_y = kept.iter().map(|(_, y)| y).sum::<f64>() / count;
    let covariance: f64 = kept.iter().map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
    let variance: f64 = kept.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    if variance == 0.0 {
        return None;
    }
    let bytes_per_sec = covariance / variance;
    Some(Fit {
        intercept_bytes: mean_y - bytes_per_sec * mean_x,
        bytes_per_sec,
    })
}

/// The least-squares slope of RSS over time, in KiB per minute, over the samples taken at or
/// after `from_secs`; `None` with fewer than three of them.
pub fn slope_kib_per_min(samples: &[Sample], from_secs: f64) -> Option<f64> {
    fit(samples, from_secs).map(|fit| fit.kib_per_min())
}

/// The start of a soak of `duration` left out of the slope: its first sixth (10 s of 60 s),
/// while the allocator, connection pools and caches settle.
pub fn settle_secs(duration: Duration) -> f64 {
    duration.as_secs_f64() / 6.0
}

/// What a soak measured, ready for the verdict and the table; made by `loadgen soak` and
/// `chatload soak` alike.
#[derive(Debug, Clone, PartialEq)]
pub struct SoakReport {
    /// When it ran, `2026-11-23 14:00 UTC`.
    pub when: String,
    /// The service.
    pub service: String,
    /// Its storage and TLS mode, `sqlite, TLS off`.
    pub backend: String,
    /// What was sent: `90% GET /hello/{username}, 10% PUT /hello/{username}; 64 connections`.
    pub load: String,
    /// The rate offered and where it came from: `40,000 req/s (0.8 × peak 50,000)`.
    pub offered: String,
    /// What arrived per second: `39,998 req/s`.
    pub achieved: String,
    /// Non-2xx/3xx answers, transport errors, requests never sent (chat: gaps, duplicates,
    /// missing deliveries, closed connections, error frames).
    pub errors: u64,
    /// Errors by kind.
    pub error_kinds: BTreeMap<String, u64>,
    /// Latency percentiles, milliseconds, from when each request was due.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// RSS once a second from the start of the load.
    pub samples: Vec<Sample>,
    /// How long the load lasted.
    pub duration: Duration,
    /// The verdict's limit on the slope.
    pub max_growth_kib_per_min: f64,
}

impl SoakReport {
    /// The start of the soak left out of the slope ([`settle_secs`]).
    pub fn settle_secs(&self) -> f64 {
        settle_secs(self.duration)
    }

    /// The RSS slope after the settling part, KiB per minute.
    pub fn slope_kib_per_min(&self) -> Option<f64> {
        slope_kib_per_min(&self.samples, self.settle_secs())
    }

    /// Why the soak failed; empty when it passed.
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.errors > 0 {
            let kinds: Vec<String> = self
                .error_kinds
                .iter()
                .map(|(kind, count)| format!("{count} {kind}"))
                .collect();
            failures.push(format!("{} errors ({})", self.errors, kinds.join(", ")));
        }
        if let Some(slope) = self.slope_kib_per_min()
            && slope > self.max_growth_kib_per_min
        {
            failures.push(format!(
                "RSS grew {slope:.0} KiB/min, above {:.0}",
                self.max_growth_kib_per_min
            ));
        }
        failures
    }

    /// Whether this was shorter than a full soak, so its row is no measurement.
    pub fn is_smoke_run(&self) -> bool {
        self.duration < FULL_SOAK
    }

    /// Its row of the `bench:soak` table.
    pub fn row(&self) -> String {
        let mib = |sample: Option<&Sample>| {
            sample.map_or_else(|| "n/a".to_owned(), |s| report::mebibytes(s.rss_bytes))
        };
        let failures = self.failures();
        let mut verdict = if failures.is_empty() {
            "pass".to_owned()
        } else {
            format!("**fail**: {}", failures.join("; "))
        };
        if self.is_smoke_run() {
            verdict.push_str(&format!(
                " (smoke run of {:?}, not a measurement)",
                self.duration
            ));
        }
        format!(
            "| {when} | {service} | {backend} | {load} | {offered} | {achieved} | {errors} | {p50:.2} | {p99:.2} | {p999:.2} | {start} → {end} | {slope} | {limit:.0} | {verdict} |",
            when = self.when,
            service = self.service,
            backend = self.backend,
            load = self.load,
            offered = self.offered,
            achieved = self.achieved,
            errors = self.errors,
            p50 = self.p50_ms,
            p99 = self.p99_ms,
            p999 = self.p999_ms,
            start = mib(self.samples.first()),
            end = mib(self.samples.last()),
            slope = self
                .slope_kib_per_min()
                .map_or_else(|| "n/a".to_owned(), |slope| format!("{slope:.0}")),
            limit = self.max_growth_kib_per_min,
        )
    }

    /// A few lines for the terminal.
    pub fn summary(&self) -> String {
        let failures = self.failures();
        format!(
            "{} ({}): offered {}, achieved {}, {} errors {:?}, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, RSS {} → {} MiB, slope {} KiB/min (limit {:.0}): {}",
            self.service,
            self.backend,
            self.offered,
            self.achieved,
            self.errors,
            self.error_kinds,
            self.p50_ms,
            self.p99_ms,
            self.p999_ms,
            self.samples
                .first()
                .map_or_else(|| "n/a".to_owned(), |s| report::mebibytes(s.rss_bytes)),
            self.samples
                .last()
                .map_or_else(|| "n/a".to_owned(), |s| report::mebibytes(s.rss_bytes)),
            self.slope_kib_per_min()
                .map_or_else(|| "n/a".to_owned(), |slope| format!("{slope:.0}")),
            self.max_growth_kib_per_min,
            if failures.is_empty() {
                "PASS".to_owned()
            } else {
                format!("FAIL: {}", failures.join("; "))
            }
        )
    }
}

/// The header of the `bench:soak` table; README's Benchmarks section explains each column.
pub const HEADER: &str = "| when | service | backend | load | offered | achieved | errors | p50 ms | p99 ms | p99.9 ms | RSS start → end MiB | RSS slope KiB/min | limit KiB/min | verdict |\n|---|---|---|---|---|---|---:|---:|---:|---:|---|---:|---:|---|";

/// The `bench:soak` section with `row` for `service` and `backend`: it replaces that pair's
/// previous row where it stood, or comes last. Other rows of `existing` are kept.
pub fn section_with_row(existing: Option<&str>, service: &str, backend: &str, row: &str) -> String {
    fn key(line: &str) -> (Option<&str>, Option<&str>) {
        // `| when | service | backend | …`: cell 0 is before the first bar.
        let mut cells = line.split('|').map(str::trim).skip(2);
        (cells.next(), cells.next())
    }
    let header_first = HEADER.lines().next().unwrap_or_default();
    let mut rows: Vec<String> = existing
        .unwrap_or_default()
        .lines()
        .filter(|line| line.starts_with("| ") && *line != header_first)
        .map(str::to_owned)
        .collect();
    match rows
        .iter()
        .position(|line| key(line) == (Some(service), Some(backend)))
    {
        Some(idx) => rows[idx] = row.to_owned(),
        None => rows.push(row.to_owned()),
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!-- Generated by `loadgen soak` and `chatload soak`: one row per service and backend, replaced by its next soak; edit the text outside the markers only. -->\n"
    );
    let _ = writeln!(out, "{HEADER}");
    for line in rows {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Puts `report`'s row into the `bench:soak` section of the Markdown file at `path` (created
/// when absent).
pub fn write(path: &Path, report: &SoakReport) -> anyhow::Result<()> {
    let document = match std::fs::read_to_string(path) {
        Ok(document) => document,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".to_owned(),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    let section = section_with_row(
        report::section(&document, "soak"),
        &report.service,
        &report.backend,
        &report.row(),
    );
    let updated = report::replace_section(&document, "soak", &section)
        .with_context(|| format!("cannot update {}", path.display()))?;
    std::fs::write(path, updated).with_context(|| format!("cannot write {}", path.display()))
}

/// The current UTC time, `2026-11-23 14:00 UTC`.
pub fn now_utc() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_else(|_| "unknown date".to_owned())
}

/// A soak's answers count as good when 2xx or 3xx.
fn good_status(status: u16) -> bool {
    (200..400).contains(&status)
}

/// Soaks the HTTP service `service` as `args` says and reports what it measured.
pub async fn run(args: &SoakArgs, service: Service) -> anyhow::Result<SoakReport> {
    if args.max_growth_kib_per_min.is_nan() || args.max_growth_kib_per_min < 0.0 {
        bail!("--max-growth-kib-per-min must be zero or more");
    }
    let bin_dir = crate::bench::binary_dir()?;
    let program = crate::bench::sibling(&bin_dir, service.name(), &[service])?;
    let tls = args.tls.unwrap_or(if service.tls_by_default() {
        TlsMode::On
    } else {
        TlsMode::Off
    });
    let storage = args.storage.unwrap_or(Storage::Sqlite);
    let scratch = ScratchDir::new("loadgen-soak")?;
    let storage_url = match storage {
        Storage::Memory => "memory:".to_owned(),
        Storage::Sqlite => format!(
            "sqlite://{}",
            scratch
                .path()
                .join(format!("{}.db", service.name()))
                .display()
        ),
        Storage::Postgres | Storage::DynamoDb => bail!("soak runs on memory or sqlite"),
    };
    let cert_dir = scratch.path().join("tls");
    let backend = format!("{}, TLS {}", storage.name(), tls.name());
    let spec = TargetSpec::service(
        service.name(),
        &format!("{} ({backend})", service.name()),
        &program,
        &storage_url,
        (tls == TlsMode::On).then_some(cert_dir.as_path()),
    );
    let target = spec.start().await?;
    let endpoint = target.endpoint()?;
    let pid = target.pid().context("the server has no process id")?;
    let account = service.account(&endpoint, Kind::Mix).await?;
    let scenario = service.scenario(Kind::Mix, args.fixtures, &account)?;

    let (rate, offered_from) = match (args.rate, args.peak_fraction) {
        (Some(rate), _) => (rate, "--rate".to_owned()),
        (None, Some(fraction)) => {
            let load = Load {
                connections: args.connections,
                warmup: PEAK_WARMUP,
                duration: args.peak_duration,
            };
            let peak = http::run(&endpoint, scenario.as_ref(), load, &[]).await?;
            eprintln!(
                "Peak of the mix, closed loop, {} connections, {:?}: {:.0} req/s, {} errors {:?}.",
                args.connections, args.peak_duration, peak.rps, peak.errors, peak.error_kinds
            );
            if peak.errors > 0 {
                bail!(
                    "the peak measurement had {} errors ({:?}); no rate to soak at",
                    peak.errors,
                    peak.error_kinds
                );
            }
            (
                fraction * peak.rps,
                format!("{fraction} × peak {}", report::thousands(peak.rps)),
            )
        }
        (None, None) => bail!("give --rate or --peak-fraction"),
    };
    eprintln!(
        "Soaking {} ({backend}) at {rate:.0} req/s for {:?}.",
        service.name(),
        args.duration
    );
    let mut samples = Vec::new();
    let mut sample = |elapsed: Duration| {
        if let Some(rss_bytes) = crate::memory::rss_bytes(pid) {
            samples.push(Sample {
                at_secs: elapsed.as_secs_f64(),
                rss_bytes,
            });
        }
    };
    let load = RateLoad {
        connections: args.connections,
        rate,
        duration: args.duration,
    };
    let meters = [CpuMeter::this_process(), CpuMeter::new("server", pid)];
    let summary = http::run_at_rate(
        &endpoint,
        scenario.as_ref(),
        load,
        &meters,
        good_status,
        &mut sample,
    )
    .await?;
    target.stop().await?;
    drop(scratch);
    let cpu_share = |process: &str| {
        summary
            .cpu_seconds
            .get(process)
            .map_or(f64::NAN, |seconds| {
                seconds / args.duration.as_secs_f64() * 100.0
            })
    };
    eprintln!(
        "CPU over the soak, as a share of one core: loadgen {:.0}%, server {:.0}%.",
        cpu_share("loadgen"),
        cpu_share("server")
    );
    Ok(SoakReport {
        when: now_utc(),
        service: service.name().to_owned(),
        backend,
        load: format!(
            "{}; open loop, {} connections",
            service.route(Kind::Mix),
            args.connections
        ),
        offered: format!("{} req/s ({offered_from})", report::thousands(rate)),
        achieved: format!("{} req/s", report::thousands(summary.rps)),
        errors: summary.errors,
        error_kinds: summary.error_kinds,
        p50_ms: summary.p50_ms,
        p99_ms: summary.p99_ms,
        p999_ms: summary.p999_ms,
        samples,
        duration: args.duration,
        max_growth_kib_per_min: args.max_growth_kib_per_min,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Samples at 0, 1, … seconds of `rss(t)` bytes.
    fn samples(seconds: u32, rss: impl Fn(f64) -> f64) -> Vec<Sample> {
        (0..=seconds)
            .map(|second| {
                let at_secs = f64::from(second);
                Sample {
                    at_secs,
                    rss_bytes: rss(at_secs) as u64,
                }
            })
            .collect()
    }

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 1e-6 * expected.abs().max(1.0)
    }

    #[test]
    fn the_slope_of_a_steady_leak_is_its_rate_in_kib_per_minute() {
        // 2 KiB per second = 120 KiB per minute, on top of 50 MiB.
        let leak = samples(60, |t| 50.0 * 1048576.0 + 2048.0 * t);
        let slope = slope_kib_per_min(&leak, 10.0).expect("a trend");
        assert!(close(slope, 120.0), "{slope}");
        // A flat line has no slope; a shrinking one a negative slope.
        let flat = samples(60, |_| 50.0 * 1048576.0);
        assert!(close(slope_kib_per_min(&flat, 10.0).expect("a trend"), 0.0));
        let shrinking = samples(60, |t| 50.0 * 1048576.0 - 1024.0 * t);
        assert!(close(
            slope_kib_per_min(&shrinking, 0.0).expect("a trend"),
            -60.0
        ));
    }

    #[test]
    fn the_fit_is_the_line_through_the_samples() {
        // 50 MiB at second 0, 2 KiB more each second: the line the chart draws.
        let leak = samples(60, |t| 50.0 * 1048576.0 + 2048.0 * t);
        let fit = fit(&leak, 10.0).expect("a line");
        assert!(close(fit.intercept_bytes, 50.0 * 1048576.0), "{fit:?}");
        assert!(close(fit.bytes_per_sec, 2048.0), "{fit:?}");
        assert!(close(fit.kib_per_min(), 120.0), "{fit:?}");
        assert_eq!(settle_secs(Duration::from_secs(60)), 10.0);
    }

    #[test]
    fn the_slope_ignores_the_settling_start() {
        // RSS jumps by 30 MiB during the first 10 s, then stays flat.
        let settling = samples(60, |t| {
            if t < 10.0 {
                20.0 * 1048576.0 + 3.0 * 1048576.0 * t
            } else {
                50.0 * 1048576.0
            }
        });
        assert!(close(
            slope_kib_per_min(&settling, 10.0).expect("a trend"),
            0.0
        ));
        // Counted from the start, the same samples would look like a leak.
        assert!(slope_kib_per_min(&settling, 0.0).expect("a trend") > 1024.0);
        // Too few samples after the start: no trend.
        assert_eq!(slope_kib_per_min(&settling, 59.0), None);
        assert_eq!(slope_kib_per_min(&[], 0.0), None);
    }

    fn report(errors: u64, growth_bytes_per_sec: f64, duration_secs: u32) -> SoakReport {
        SoakReport {
            when: "2026-11-23 14:00 UTC".to_owned(),
            service: "hello".to_owned(),
            backend: "memory, TLS off".to_owned(),
            load: "mix".to_owned(),
            offered: "1,000 req/s (--rate)".to_owned(),
            achieved: "1,000 req/s".to_owned(),
            errors,
            error_kinds: if errors > 0 {
                BTreeMap::from([("status 503".to_owned(), errors)])
            } else {
                BTreeMap::new()
            },
            p50_ms: 0.5,
            p99_ms: 2.0,
            p999_ms: 4.25,
            samples: samples(duration_secs, |t| {
                10.0 * 1048576.0 + growth_bytes_per_sec * t
            }),
            duration: Duration::from_secs(u64::from(duration_secs)),
            max_growth_kib_per_min: 1024.0,
        }
    }

    #[test]
    fn a_soak_fails_on_any_error_or_on_growth_above_the_limit() {
        assert!(report(0, 0.0, 60).failures().is_empty());
        // 16 KiB/s = 960 KiB/min: under the limit.
        assert!(report(0, 16.0 * 1024.0, 60).failures().is_empty());
        assert_eq!(
            report(1, 0.0, 60).failures(),
            ["1 errors (1 status 503)".to_owned()]
        );
        // 20 KiB/s = 1,200 KiB/min: above it.
        assert_eq!(
            report(0, 20.0 * 1024.0, 60).failures(),
            ["RSS grew 1200 KiB/min, above 1024".to_owned()]
        );
        assert_eq!(report(2, 20.0 * 1024.0, 60).failures().len(), 2);
    }

    #[test]
    fn the_row_shows_memory_slope_and_verdict() {
        assert_eq!(
            report(0, 1024.0, 60).row(),
            "| 2026-11-23 14:00 UTC | hello | memory, TLS off | mix | 1,000 req/s (--rate) | 1,000 req/s | 0 | 0.50 | 2.00 | 4.25 | 10.0 → 10.1 | 60 | 1024 | pass |"
        );
        let failed = report(3, 0.0, 5).row();
        assert!(
            failed.ends_with(
                "| **fail**: 3 errors (3 status 503) (smoke run of 5s, not a measurement) |"
            ),
            "{failed}"
        );
        let cells = |line: &str| line.matches('|').count();
        assert_eq!(
            cells(&failed),
            cells(HEADER.lines().next().expect("header"))
        );
    }

    #[test]
    fn each_service_and_backend_keeps_one_row() {
        let hello = report(0, 0.0, 60);
        let first = section_with_row(None, "hello", "memory, TLS off", &hello.row());
        assert_eq!(first.matches("| hello |").count(), 1);
        assert!(first.contains(HEADER), "{first}");

        let sqlite_row = "| t | hello | sqlite, TLS off | mix | a | b | 0 | 1 | 2 | 3 | 1 → 1 | 0 | 1024 | pass |";
        let both = section_with_row(Some(&first), "hello", "sqlite, TLS off", sqlite_row);
        let rows: Vec<&str> = both.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(rows.len(), 3, "header and two rows: {both}");
        assert_eq!(rows[2], sqlite_row);

        // A new soak of hello on memory replaces its row in place.
        let again = report(1, 0.0, 60);
        let replaced = section_with_row(Some(&both), "hello", "memory, TLS off", &again.row());
        let rows: Vec<&str> = replaced.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(rows.len(), 3, "{replaced}");
        assert_eq!(rows[1], again.row());
        assert_eq!(rows[2], sqlite_row);
    }
}
