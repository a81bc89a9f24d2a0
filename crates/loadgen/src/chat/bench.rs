//! `chatload bench`: starts the servers itself, runs the targets, prints a Markdown
//! report and writes it into BENCHMARKS.md between the `bench:chat` markers.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::charts::{
    self, Chart,
    ladder::{Ladder, LadderStep, Ladders},
};
use crate::chat::fanout::{self, FanoutResult, FanoutSpec};
use crate::chat::idle::{self, IdleSpec};
use crate::chat::report::{self, FanoutRow};
use crate::chat::servers::{self, Backend, Probe, Server};
use crate::progress::Progress;

/// What `bench` runs and how.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Groups to run (all when empty): idle1, idle3, slo, latency, max1, max3.
    pub only: Vec<String>,
    pub write: Option<PathBuf>,
    pub warmup: Duration,
    pub duration: Duration,
    pub repetitions: usize,
    /// Messages/s tried, in order, for the 100-member room's maximum.
    pub ladder: Vec<f64>,
    pub idle_single: u64,
    pub idle_multi: u64,
    pub hold: Duration,
    pub message_bytes: usize,
    pub command_line: String,
    /// Keep the ladders as `DIR/chat-ladder.json` and draw `DIR/chat-ladder.svg`.
    pub charts: Option<PathBuf>,
}

impl BenchOptions {
    fn wants(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|name| name == group)
    }

    /// The planned length of each run, in the order `run` makes them: the ladders at their
    /// longest (a ladder that fails early skips the rest).
    fn plan(&self) -> Vec<Duration> {
        let full = self.warmup + self.duration + DRAIN;
        let ladder = LADDER_WARMUP + LADDER_DURATION + DRAIN;
        // Joining thousands of connections takes about as long again as the hold.
        let idle = self.hold * 2;
        let reps = self.repetitions;
        let max = |servers: usize| {
            let mut runs = Vec::new();
            for _ in 0..servers {
                runs.extend(std::iter::repeat_n(ladder, self.ladder.len()));
                runs.extend(std::iter::repeat_n(full, reps));
            }
            runs
        };
        let mut plan = Vec::new();
        for (group, runs) in [
            ("idle1", vec![idle; reps]),
            ("idle3", vec![idle; reps]),
            ("slo", vec![full; reps]),
            ("latency", vec![full; 3 * reps]),
            ("max1", max(1)),
            ("max3", max(2)),
        ] {
            if self.wants(group) {
                plan.extend(runs);
            }
        }
        plan
    }

    fn smoke_run(&self) -> bool {
        self.duration < crate::report::MEASUREMENT_WINDOW
            || self.repetitions < crate::report::MEASUREMENT_RUNS
    }
}

/// Unmeasured time after each fan-out window, for deliveries in flight to arrive.
pub(crate) const DRAIN: Duration = Duration::from_secs(2);
/// A ladder step's warm-up and window: short, since the steps only find the rate to re-run.
pub(crate) const LADDER_WARMUP: Duration = Duration::from_secs(1);
pub(crate) const LADDER_DURATION: Duration = Duration::from_secs(5);
/// A ladder step passes with p99 up to this.
pub(crate) const LADDER_P99_MS: f64 = 100.0;

/// Whether a run kept up: p99 within `p99_ms`, no gaps, duplicates or drops, every delivery
/// made after the drain, and at least 95% of the offered deliveries arriving in the window.
pub fn passes(run: &FanoutResult, offered: f64, p99_ms: f64) -> bool {
    run.latency_ms(0.99) <= p99_ms
        && run.counts.gaps == 0
        && run.counts.duplicates == 0
        && run.counts.closed == 0
        && run.missing() == 0
        && run.deliveries_per_sec() >= 0.95 * offered
}

struct Report {
    fanout: Vec<String>,
    idle: Vec<String>,
    notes: Vec<String>,
    /// The ladders climbed, for the chart.
    ladders: Vec<Ladder>,
    progress: Progress,
}

pub async fn run(options: &BenchOptions) -> anyhow::Result<()> {
    let program = servers::chat_program()?;
    let load_before = report::load_average();
    let started = now_utc();
    let mut report = Report {
        fanout: Vec::new(),
        idle: Vec::new(),
        notes: Vec::new(),
        ladders: Vec::new(),
        progress: Progress::new(options.plan()),
    };
    let mut tag_counter = 0u32;
    let mut tag = move |prefix: &str| {
        tag_counter += 1;
        format!("{prefix}-{}-{tag_counter}", std::process::id())
    };

    if options.wants("idle1") {
        let mut runs = Vec::new();
        for repetition in 1..=options.repetitions {
            report.progress.step(&format!(
                "idle, one process, run {repetition}/{}",
                options.repetitions
            ));
            let server = Server::start(&program, Backend::Memory, "chat").await?;
            let spec = IdleSpec {
                urls: vec![server.url()],
                connections: options.idle_single,
                processes: 2,
                room_size: 100,
                hold: options.hold,
            };
            let result = idle::run(&spec, &Probe::new(vec![server.pid]), &tag("idle")).await?;
            report.progress.println(&format!("idle1: {result:?}"));
            runs.push(result);
            server.stop().await;
        }
        let met = runs
            .iter()
            .all(|run| run.still_open >= 19_000 && run.bytes_per_connection() <= 8.0 * 1024.0);
        report.idle.push(report::idle_row(
            "idle, one process",
            "1 (memory)",
            &runs,
            "≥ 19,000 open, ≤ 8 KiB each",
            met,
        ));
    }
    if options.wants("idle3") {
        let mut runs = Vec::new();
        for repetition in 1..=options.repetitions {
            report.progress.step(&format!(
                "idle, three replicas, run {repetition}/{}",
                options.repetitions
            ));
            let replicas = start_replicas(&program, Backend::RedisNats).await?;
            let spec = IdleSpec {
                urls: replicas.iter().map(Server::url).collect(),
                connections: options.idle_multi,
                processes: 3,
                room_size: 100,
                hold: options.hold,
            };
            let probe = Probe::new(replicas.iter().map(|server| server.pid).collect());
            let result = idle::run(&spec, &probe, &tag("idle3")).await?;
            report.progress.println(&format!("idle3: {result:?}"));
            runs.push(result);
            for server in replicas {
                server.stop().await;
            }
        }
        let met = runs
            .iter()
            .all(|run| run.still_open >= 50_000 && run.bytes_per_connection() <= 8.0 * 1024.0);
        report.idle.push(report::idle_row(
            "idle, three replicas",
            "3 (Redis log + NATS)",
            &runs,
            "≥ 50,000 open, ≤ 8 KiB each",
            met,
        ));
    }

    let needs_single = ["slo", "latency", "max1"]
        .iter()
        .any(|group| options.wants(group));
    let mut single_max: Option<f64> = None;
    if needs_single {
        let server = Server::start(&program, Backend::Memory, "chat").await?;
        let urls = vec![server.url()];
        let probe = Probe::new(vec![server.pid]);
        let base = FanoutSpec {
            urls: urls.clone(),
            rooms: 1,
            members: 100,
            publishers: 10,
            rate: 300.0,
            warmup: options.warmup,
            duration: options.duration,
            drain: DRAIN,
            message_bytes: options.message_bytes,
        };
        if options.wants("slo") {
            let spec = base.clone();
            let runs = repeat(
                &spec,
                &probe,
                options.repetitions,
                &mut tag,
                &mut report.progress,
            )
            .await?;
            let met = runs.iter().all(|run| passes(run, spec.offered(), 5.0));
            report.fanout.push(row(
                "SLO: 300 msgs/s, 100% delivered",
                "1 (memory)",
                &spec,
                &runs,
                "no gaps/missing, p99 ≤ 5 ms",
                met,
            ));
        }
        if options.wants("latency") {
            for (members, rate, bound) in [(10, 1000.0, 2.0), (100, 100.0, 5.0), (1000, 10.0, 50.0)]
            {
                let spec = FanoutSpec {
                    members,
                    rate,
                    ..base.clone()
                };
                let runs = repeat(
                    &spec,
                    &probe,
                    options.repetitions,
                    &mut tag,
                    &mut report.progress,
                )
                .await?;
                let met = runs.iter().all(|run| passes(run, spec.offered(), bound));
                report.fanout.push(row(
                    "10,000 deliveries/s",
                    "1 (memory)",
                    &spec,
                    &runs,
                    &format!("p99 ≤ {bound} ms"),
                    met,
                ));
            }
        }
        if options.wants("max1") {
            let (line, best) =
                max_throughput(&base, &probe, options, &mut tag, "1 (memory)", &mut report).await?;
            single_max = best;
            report.notes.push(line);
        }
        server.stop().await;
    }
    if options.wants("max3") {
        for backend in [Backend::RedisNats, Backend::Redis] {
            let replicas = start_replicas(&program, backend).await?;
            let probe = Probe::new(replicas.iter().map(|server| server.pid).collect());
            let base = FanoutSpec {
                urls: replicas.iter().map(Server::url).collect(),
                rooms: 1,
                members: 100,
                publishers: 10,
                rate: 300.0,
                warmup: options.warmup,
                duration: options.duration,
                drain: DRAIN,
                message_bytes: options.message_bytes,
            };
            let servers_label = format!("3 ({})", backend.label());
            let (line, best) = max_throughput(
                &base,
                &probe,
                options,
                &mut tag,
                &servers_label,
                &mut report,
            )
            .await?;
            report.notes.push(line);
            if let (Some(best), Some(single)) = (best, single_max) {
                report.notes.push(format!(
                    "Three replicas ({}) keep {:.0}% of the single process's deliveries/s ({best:.0} vs {single:.0}); target ≥ 50%: {}.",
                    backend.label(),
                    100.0 * best / single,
                    if best >= 0.5 * single { "met" } else { "**not met**" }
                ));
            }
            for server in replicas {
                server.stop().await;
            }
        }
    }

    report.progress.finish();
    if let Some(dir) = &options.charts
        && !report.ladders.is_empty()
    {
        let ladders = Ladders {
            started: started.clone(),
            smoke_run: options.smoke_run(),
            ladders: std::mem::take(&mut report.ladders),
        };
        for path in charts::write(dir, "chat-ladder", &Chart::Ladder(ladders))? {
            eprintln!("Drew {}.", path.display());
        }
    }
    let section = render(
        options,
        &report,
        &started,
        &load_before,
        &report::load_average(),
    );
    println!("{section}");
    if let Some(path) = &options.write {
        let document = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let updated = crate::report::replace_section(&document, "chat", &section)?;
        std::fs::write(path, updated)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote the chat section of {}", path.display());
    }
    Ok(())
}

/// Tries the ladder's rates once each (short runs) until one fails its bound (p99 ≤ 100 ms and
/// keeping up), then runs the best passing rate `repetitions` times; when not every one of
/// those passes (one short run at the edge can be lucky), the next lower passing rate, and so
/// on. Returns a note and the median deliveries/s at the rate that held.
async fn max_throughput(
    base: &FanoutSpec,
    probe: &Probe,
    options: &BenchOptions,
    tag: &mut impl FnMut(&str) -> String,
    servers_label: &str,
    report: &mut Report,
) -> anyhow::Result<(String, Option<f64>)> {
    let mut tried = Vec::new();
    let mut passed = Vec::new();
    let mut steps = Vec::new();
    for (step, &rate) in options.ladder.iter().enumerate() {
        let spec = FanoutSpec {
            rate,
            warmup: LADDER_WARMUP,
            duration: LADDER_DURATION,
            ..base.clone()
        };
        report
            .progress
            .step(&format!("ladder, {servers_label}, {rate} msgs/s"));
        let run = fanout::run(&spec, probe, &tag("ladder")).await?;
        let ok = passes(&run, spec.offered(), LADDER_P99_MS);
        report.progress.println(&format!(
            "ladder {servers_label} {rate} msgs/s: {:.0} deliveries/s, p99 {:.1} ms, missing {}, {}",
            run.deliveries_per_sec(),
            run.latency_ms(0.99),
            run.missing(),
            if ok { "ok" } else { "FAIL" }
        ));
        steps.push(LadderStep {
            msgs_per_sec: rate,
            offered_deliveries_per_sec: spec.offered(),
            deliveries_per_sec: run.deliveries_per_sec(),
            p99_ms: run.latency_ms(0.99),
            passed: ok,
        });
        tried.push(format!(
            "{rate:.0} msgs/s → {:.0} deliveries/s, p99 {:.1} ms{}",
            run.deliveries_per_sec(),
            run.latency_ms(0.99),
            if ok { "" } else { " (fails)" }
        ));
        if !ok {
            report.progress.skip(options.ladder.len() - step - 1);
            break;
        }
        passed.push(rate);
    }
    report.ladders.push(Ladder {
        servers: servers_label.to_owned(),
        members: base.members,
        p99_bound_ms: LADDER_P99_MS,
        steps,
    });
    if passed.is_empty() {
        // No rate to re-run.
        report.progress.skip(options.repetitions);
    }
    let mut line = format!(
        "Ladder, 100-member room, {servers_label} (one 1 s + 5 s run per rate): {}.",
        tried.join("; ")
    );
    let mut attempt = None;
    while let Some(rate) = passed.pop() {
        let spec = FanoutSpec {
            rate,
            ..base.clone()
        };
        let runs = repeat(&spec, probe, options.repetitions, tag, &mut report.progress).await?;
        let met = runs
            .iter()
            .all(|run| passes(run, spec.offered(), LADDER_P99_MS));
        if !met && !passed.is_empty() {
            // The next lower rate is re-run: runs the plan did not have.
            let full = spec.warmup + spec.duration + spec.drain;
            report
                .progress
                .insert(std::iter::repeat_n(full, options.repetitions));
            let p99s: Vec<String> = runs
                .iter()
                .map(|run| format!("{:.1}", run.latency_ms(0.99)))
                .collect();
            line.push_str(&format!(
                " {rate:.0} msgs/s did not hold over {} full runs (p99 {} ms); the next lower rate was run.",
                runs.len(),
                p99s.join(", ")
            ));
            continue;
        }
        attempt = Some((spec, runs, met));
        break;
    }
    let Some((spec, runs, met)) = attempt else {
        return Ok((line, None));
    };
    let median = report::median_by(&runs, FanoutResult::deliveries_per_sec)
        .map(FanoutResult::deliveries_per_sec);
    let target = if servers_label.starts_with('1') {
        "≥ 1,000,000 deliveries/s, p99 ≤ 100 ms"
    } else {
        "≥ 50% of one process"
    };
    // The offered rate, which every run delivered in full (nothing missing, p99 in bound):
    // deliveries counted inside the window differ from it by the few hundred in flight at its
    // edges, either way.
    let reached = spec.offered() >= 1_000_000.0;
    report.fanout.push(row(
        "max throughput (highest passing rate)",
        servers_label,
        &spec,
        &runs,
        target,
        if servers_label.starts_with('1') {
            met && reached
        } else {
            met
        },
    ));
    Ok((line, median))
}

async fn repeat(
    spec: &FanoutSpec,
    probe: &Probe,
    repetitions: usize,
    tag: &mut impl FnMut(&str) -> String,
    progress: &mut Progress,
) -> anyhow::Result<Vec<FanoutResult>> {
    let mut runs = Vec::new();
    for repetition in 1..=repetitions {
        progress.step(&format!(
            "{} × {} @ {} msgs/s, run {repetition}/{repetitions}",
            spec.rooms, spec.members, spec.rate
        ));
        let run = fanout::run(spec, probe, &tag("run")).await?;
        progress.println(&format!(
            "{} × {} @ {} msgs/s: {:.0} deliveries/s, p99 {:.2} ms, gaps {} dups {} missing {} closed {}",
            spec.rooms,
            spec.members,
            spec.rate,
            run.deliveries_per_sec(),
            run.latency_ms(0.99),
            run.counts.gaps,
            run.counts.duplicates,
            run.missing(),
            run.counts.closed
        ));
        runs.push(run);
    }
    Ok(runs)
}

fn row(
    scenario: &str,
    servers: &str,
    spec: &FanoutSpec,
    runs: &[FanoutResult],
    target: &str,
    met: bool,
) -> String {
    report::fanout_row(
        &FanoutRow {
            scenario,
            servers,
            rooms: spec.rooms,
            members: spec.members,
            publishers: spec.publishers,
            rate: spec.rate,
            target,
            met,
        },
        runs,
    )
}

async fn start_replicas(
    program: &std::path::Path,
    backend: Backend,
) -> anyhow::Result<Vec<Server>> {
    let mut replicas = Vec::new();
    for index in 0..3 {
        replicas.push(Server::start(program, backend, &format!("chat-{index}")).await?);
    }
    Ok(replicas)
}

fn render(
    options: &BenchOptions,
    report: &Report,
    started: &str,
    load_before: &str,
    load_after: &str,
) -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| crate::report::cpu_model(&text))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let mut out = String::new();
    out.push_str(
        "<!-- Generated by `chatload bench`; edit the text outside the markers only. -->\n\n",
    );
    if options.smoke_run() {
        out.push_str(crate::report::SMOKE_RUN);
        out.push_str("\n\n");
    }
    out.push_str(&format!("Command: `{}`\n\n", options.command_line));
    out.push_str(&format!(
        "Machine: {cores} cores ({cpu}), shared with other work; load average (1/5/15 min) {load_before} before, {load_after} after; started {started}. \
         Each row: median of {} runs (by deliveries/s), each after a {} s warm-up, {} s measured, 2 s drain; message text {} bytes.\n\n",
        options.repetitions,
        options.warmup.as_secs(),
        options.duration.as_secs(),
        options.message_bytes,
    ));
    out.push_str(METHOD);
    out.push('\n');
    if !report.fanout.is_empty() {
        out.push_str(report::FANOUT_HEADER);
        out.push('\n');
        for line in &report.fanout {
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
    if !report.idle.is_empty() {
        out.push_str(report::IDLE_HEADER);
        out.push('\n');
        for line in &report.idle {
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
    for note in &report.notes {
        out.push_str(&format!("- {note}\n"));
    }
    out
}

/// How the numbers were taken, printed above the tables.
const METHOD: &str = "Open loop: publishers send on a fixed schedule whatever the replies, each payload stamped with its *scheduled* send time, so a late sender counts as latency (\"sender lag\" is that part); a metronome thread on the kernel's high-resolution timer wakes each publisher when its message is due (tokio's timer fires on a 1 ms tick). \
Latency = receive time − scheduled time over every member, for messages due in the window; deliveries/s = deliveries arriving in the window. \
Every receiver checks `seq` = previous + 1 (gaps and duplicates); \"missing\" = window messages × members − deliveries after the drain. \
A rate passes when p99 is within its bound, nothing is missing, duplicated or dropped and ≥ 95% of the offered deliveries arrive in the window; the maximum is the highest passing rate of the ladder whose re-runs (like every other row's) all pass too, else the next lower passing rate; the 1,000,000 deliveries/s target is met by an offered rate of at least that which every run passes. \
Server CPU = utime + stime of the server PID(s) over the window / deliveries; idle KiB/connection = VmRSS growth / connections opened, 3 s after the last join, each run on fresh servers (100 members per room, rooms filled in turn). \
The fd limit is 20,000 per process, so idle clients run in worker processes (2 × 9,500 for one server, 3 × 16,667 for three replicas); \"still open\" is checked after a 10 s hold. \
The load generator is one current-thread tokio runtime (`--threads 1`); Redis and NATS run on the same 2 cores.\n";

/// The current UTC time, `2026-11-23 12:00 UTC`.
fn now_utc() -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_else(|_| "unknown date".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(only: &[&str]) -> BenchOptions {
        BenchOptions {
            only: only.iter().map(|group| (*group).to_owned()).collect(),
            write: None,
            warmup: Duration::from_secs(2),
            duration: Duration::from_secs(10),
            repetitions: 3,
            ladder: vec![1000.0, 2000.0, 4000.0],
            idle_single: 19_000,
            idle_multi: 50_000,
            hold: Duration::from_secs(10),
            message_bytes: 64,
            command_line: "chatload bench".to_owned(),
            charts: None,
        }
    }

    #[test]
    fn the_plan_has_a_run_per_repetition_and_ladder_step_in_run_order() {
        let full = Duration::from_secs(14);
        let step = Duration::from_secs(8);
        // bench/run's groups: the SLO's three runs, then the ladder, then its three re-runs.
        assert_eq!(
            options(&["slo", "max1"]).plan(),
            [full, full, full, step, step, step, full, full, full]
        );
        // Everything: idle 2 × 3, SLO 3, latency 9, one ladder and two more for three replicas.
        assert_eq!(options(&[]).plan().len(), 6 + 3 + 9 + 3 * (3 + 3));
    }
}
