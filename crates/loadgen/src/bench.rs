//! `loadgen bench`: starts hello on memory and on SQLite and the bare baseline, loads each with
//! every hello scenario, and reports the median of the repetitions against the baseline.
//!
//! Repetitions are interleaved (round 1 of every target and scenario, then round 2, …), so a
//! burst of outside load on the machine hits all targets alike instead of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::cli::BenchArgs;
use crate::cpu::CpuMeter;
use crate::http::{self, Endpoint, Load};
use crate::report::{self, Row};
use crate::scenario::hello;
use crate::summary::{self, Summary};
use crate::target::{RunningTarget, ScratchDir, TargetSpec};

/// Index of the baseline in the target list; ratios are taken against it.
const BASELINE_IDX: usize = 0;

/// Runs the whole benchmark and returns the Markdown section (without markers).
pub async fn run(args: &BenchArgs, threads: usize) -> anyhow::Result<String> {
    if args.repetitions == 0 {
        bail!("--repetitions must be at least 1");
    }
    let bin_dir = binary_dir()?;
    let hello_bin = sibling(&bin_dir, "hello")?;
    let baseline_bin = sibling(&bin_dir, "baseline")?;
    if bin_dir.file_name().is_some_and(|name| name == "debug") {
        eprintln!("warning: these are debug builds; numbers mean little. Use --release.");
    }
    let load_before = load_average();

    let scratch = ScratchDir::new("loadgen-bench")?;
    let sqlite_url = format!("sqlite://{}", scratch.path().join("hello.db").display());
    let specs = [
        TargetSpec::baseline(&baseline_bin),
        TargetSpec::hello("hello (memory)", &hello_bin, "memory:"),
        TargetSpec::hello("hello (sqlite)", &hello_bin, &sqlite_url),
    ];
    let mut targets: Vec<RunningTarget> = Vec::with_capacity(specs.len());
    for spec in &specs {
        // On error, the guards of the targets already started kill them.
        targets.push(spec.start().await?);
    }

    let load = Load {
        connections: args.load.connections,
        warmup: args.load.warmup,
        duration: args.load.duration,
    };
    let mut runs: BTreeMap<(usize, hello::Kind), Vec<Summary>> = BTreeMap::new();
    for round in 1..=args.repetitions {
        for (target_idx, target) in targets.iter().enumerate() {
            for kind in hello::Kind::ALL {
                let scenario = kind.scenario(args.load.users);
                let endpoint = Endpoint::from_addr(target.addr);
                let meters: Vec<CpuMeter> = std::iter::once(CpuMeter::this_process())
                    .chain(target.cpu_meter())
                    .collect();
                let summary = http::run(&endpoint, scenario.as_ref(), load, &meters)
                    .await
                    .with_context(|| format!("{} {} failed", target.name, scenario.name()))?;
                eprintln!(
                    "round {round}/{reps}: {name} {scenario}: {rps:.0} req/s, p50 {p50:.2} ms, p99 {p99:.2} ms, {errors} errors {kinds:?}, CPU s {cpu:?}",
                    reps = args.repetitions,
                    name = target.name,
                    scenario = scenario.name(),
                    rps = summary.rps,
                    p50 = summary.p50_ms,
                    p99 = summary.p99_ms,
                    errors = summary.errors,
                    kinds = summary.error_kinds,
                    cpu = summary.cpu_seconds,
                );
                runs.entry((target_idx, kind)).or_default().push(summary);
            }
        }
    }
    let names: Vec<String> = targets.iter().map(|target| target.name.clone()).collect();
    for target in targets {
        target.stop().await?;
    }
    drop(scratch);

    let rows = rows(&names, &runs)?;
    let context = report::Context {
        date: time::OffsetDateTime::now_utc().date().to_string(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model: std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| report::cpu_model(&text)),
        rustc: rustc_version(),
        load_before,
        load_after: load_average(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        method: format!(
            "Closed loop, {connections} keep-alive connections, {warmup:?} warm-up then {duration:?} measured, median of {reps} interleaved runs by requests/s; loadgen on {threads} runtime thread(s), servers on their default runtime (one worker per CPU); {users} users for GET.",
            connections = load.connections,
            warmup = load.warmup,
            duration = load.duration,
            reps = args.repetitions,
            users = args.load.users,
        ),
    };
    Ok(report::render(&context, &rows))
}

/// Table rows, by scenario then target, with each median's ratio to the baseline's.
fn rows(
    names: &[String],
    runs: &BTreeMap<(usize, hello::Kind), Vec<Summary>>,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for kind in hello::Kind::ALL {
        let median_of = |target_idx: usize| {
            runs.get(&(target_idx, kind))
                .and_then(|summaries| summary::median_by_rps(summaries))
        };
        let baseline_rps = median_of(BASELINE_IDX).map(|median| median.rps);
        for (target_idx, name) in names.iter().enumerate() {
            let summaries = runs
                .get(&(target_idx, kind))
                .with_context(|| format!("no runs of {name} {kind:?}"))?;
            let median = median_of(target_idx)
                .with_context(|| format!("no runs of {name} {kind:?}"))?
                .clone();
            let ratio_to_baseline = baseline_rps
                .filter(|&rps| rps > 0.0)
                .map(|rps| median.rps / rps);
            rows.push(Row {
                target: name.clone(),
                scenario: kind.scenario(1).name().to_owned(),
                runs_rps: summaries.iter().map(|summary| summary.rps).collect(),
                errors: summaries.iter().map(|summary| summary.errors).sum(),
                median,
                ratio_to_baseline,
            });
        }
    }
    Ok(rows)
}

/// The directory of this executable, where Cargo also puts `hello` and `baseline`.
fn binary_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    exe.parent()
        .map(Path::to_owned)
        .with_context(|| format!("{} has no parent directory", exe.display()))
}

fn sibling(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        bail!(
            "{} not found; run `cargo build --release -p hello -p loadgen` first",
            path.display()
        );
    }
    Ok(path)
}

fn rustc_version() -> Option<String> {
    let output = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    output.status.success().then(|| version.trim().to_owned())
}

fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}
