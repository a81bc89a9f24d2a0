//! `loadgen bench --service S`: starts S on memory and on SQLite and the bare baseline (for
//! messages, each with TLS off and on), loads each with every scenario of S, and reports the
//! median of the repetitions against the baseline of the same TLS mode.
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
use crate::scenario::{Kind, Service};
use crate::summary::{self, Summary};
use crate::target::{RunningTarget, ScratchDir, TargetSpec};

/// A server to start, and the one it is compared with.
#[derive(Debug, Clone)]
struct Planned {
    spec: TargetSpec,
    /// Index in the plan of its baseline (its own, for a baseline): the one with its TLS mode.
    baseline_idx: usize,
}

/// Runs the whole benchmark and returns the Markdown section (without markers).
pub async fn run(args: &BenchArgs, threads: usize) -> anyhow::Result<String> {
    if args.repetitions == 0 {
        bail!("--repetitions must be at least 1");
    }
    let service = args.service;
    let bin_dir = binary_dir()?;
    let service_bin = sibling(&bin_dir, service.name(), service)?;
    let baseline_bin = sibling(&bin_dir, "baseline", service)?;
    if bin_dir.file_name().is_some_and(|name| name == "debug") {
        eprintln!("warning: these are debug builds; numbers mean little. Use --release.");
    }
    let load_before = load_average();

    let scratch = ScratchDir::new("loadgen-bench")?;
    let planned = plan(service, &service_bin, &baseline_bin, scratch.path());
    let mut targets: Vec<RunningTarget> = Vec::with_capacity(planned.len());
    for target in &planned {
        // On error, the guards of the targets already started kill them.
        targets.push(target.spec.start().await?);
    }
    // Each TLS target's certificate exists once it is ready.
    let endpoints = targets
        .iter()
        .map(|target| {
            target
                .endpoint()
                .with_context(|| format!("cannot reach {}", target.name))
        })
        .collect::<anyhow::Result<Vec<Endpoint>>>()?;

    let load = Load {
        connections: args.load.connections,
        warmup: args.load.warmup,
        duration: args.load.duration,
    };
    let mut runs: BTreeMap<(usize, Kind), Vec<Summary>> = BTreeMap::new();
    for round in 1..=args.repetitions {
        for (target_idx, (target, endpoint)) in targets.iter().zip(&endpoints).enumerate() {
            for &kind in service.kinds() {
                let scenario = service.scenario(kind, args.load.fixtures)?;
                let meters: Vec<CpuMeter> = std::iter::once(CpuMeter::this_process())
                    .chain(target.cpu_meter())
                    .collect();
                let summary = http::run(endpoint, scenario.as_ref(), load, &meters)
                    .await
                    .with_context(|| format!("{} {} failed", target.name, kind.name()))?;
                eprintln!(
                    "round {round}/{reps}: {name} {scenario}: {rps:.0} req/s, p50 {p50:.2} ms, p99 {p99:.2} ms, {errors} errors {kinds:?}, CPU s {cpu:?}",
                    reps = args.repetitions,
                    name = target.name,
                    scenario = kind.name(),
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

    let baselines: Vec<usize> = planned.iter().map(|target| target.baseline_idx).collect();
    let rows = rows(&names, &baselines, service.kinds(), &runs)?;
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
            "Closed loop, {connections} keep-alive connections, {warmup:?} warm-up then {duration:?} measured, median of {reps} interleaved runs by requests/s; loadgen on {threads} runtime thread(s), servers on their default runtime (one worker per CPU); {fixtures} {noun} for GET.{tls}",
            connections = load.connections,
            warmup = load.warmup,
            duration = load.duration,
            reps = args.repetitions,
            fixtures = args.load.fixtures,
            noun = service.fixture_noun(),
            tls = if tls_modes(service).len() > 1 {
                " TLS on: rustls with ring on both ends, HTTP/1.1 by ALPN, handshakes done before the clock starts; \"vs baseline\" compares with the baseline of the same TLS mode."
            } else {
                ""
            },
        ),
    };
    Ok(report::render(&context, &rows))
}

/// Whether a target serves plain HTTP or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    Off,
    On,
}

/// The TLS modes `service` is measured in: hello serves plain HTTP; messages, TLS by default, is
/// measured both ways.
fn tls_modes(service: Service) -> &'static [Tls] {
    match service {
        Service::Hello => &[Tls::Off],
        Service::Messages => &[Tls::Off, Tls::On],
    }
}

/// The targets of `service`, in report order: the baseline in each TLS mode, then the service on
/// memory and on SQLite in each TLS mode. Certificates and databases go under `scratch`.
fn plan(service: Service, service_bin: &Path, baseline_bin: &Path, scratch: &Path) -> Vec<Planned> {
    let modes = tls_modes(service);
    let cert_dir = scratch.join("tls");
    let tls_dir = |mode: Tls| (mode == Tls::On).then_some(cert_dir.as_path());
    // With a single mode the names say nothing about TLS, as they always have for hello.
    let label = |what: &str, mode: Tls| match (modes.len(), mode) {
        (1, _) => what.to_owned(),
        (_, Tls::Off) => format!("{what}, TLS off"),
        (_, Tls::On) => format!("{what}, TLS on"),
    };
    let mut planned: Vec<Planned> = modes
        .iter()
        .enumerate()
        .map(|(mode_idx, &mode)| Planned {
            spec: TargetSpec::baseline(
                &format!("baseline ({})", label("bare axum", mode)),
                baseline_bin,
                tls_dir(mode),
            ),
            baseline_idx: mode_idx,
        })
        .collect();
    for storage in ["memory", "sqlite"] {
        for (mode_idx, &mode) in modes.iter().enumerate() {
            let storage_url = if storage == "memory" {
                "memory:".to_owned()
            } else {
                // One file per target: no two servers share a database.
                let file = scratch.join(format!("{}-{mode_idx}.db", service.name()));
                format!("sqlite://{}", file.display())
            };
            planned.push(Planned {
                spec: TargetSpec::service(
                    service.name(),
                    &format!("{} ({})", service.name(), label(storage, mode)),
                    service_bin,
                    &storage_url,
                    tls_dir(mode),
                ),
                baseline_idx: mode_idx,
            });
        }
    }
    planned
}

/// Table rows, by scenario then target, with each median's ratio to that of the target's
/// baseline (`baselines[target_idx]`).
fn rows(
    names: &[String],
    baselines: &[usize],
    kinds: &[Kind],
    runs: &BTreeMap<(usize, Kind), Vec<Summary>>,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &kind in kinds {
        let median_of = |target_idx: usize| {
            runs.get(&(target_idx, kind))
                .and_then(|summaries| summary::median_by_rps(summaries))
        };
        for (target_idx, name) in names.iter().enumerate() {
            let baseline_rps = baselines
                .get(target_idx)
                .and_then(|&baseline_idx| median_of(baseline_idx))
                .map(|median| median.rps);
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
                scenario: kind.name().to_owned(),
                runs_rps: summaries.iter().map(|summary| summary.rps).collect(),
                errors: summaries.iter().map(|summary| summary.errors).sum(),
                median,
                ratio_to_baseline,
            });
        }
    }
    Ok(rows)
}

/// The directory of this executable, where Cargo also puts the services and `baseline`.
fn binary_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    exe.parent()
        .map(Path::to_owned)
        .with_context(|| format!("{} has no parent directory", exe.display()))
}

fn sibling(dir: &Path, name: &str, service: Service) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        bail!(
            "{} not found; run `cargo build --release -p {} -p loadgen` first",
            path.display(),
            service.name()
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::summary::Recording;

    fn names_and_baselines(service: Service) -> (Vec<String>, Vec<usize>) {
        let planned = plan(
            service,
            Path::new("bin/svc"),
            Path::new("bin/baseline"),
            Path::new("/scratch"),
        );
        planned
            .into_iter()
            .map(|target| (target.spec.name, target.baseline_idx))
            .unzip()
    }

    #[test]
    fn hello_keeps_its_three_plain_targets() {
        let (names, baselines) = names_and_baselines(Service::Hello);
        assert_eq!(
            names,
            ["baseline (bare axum)", "hello (memory)", "hello (sqlite)"]
        );
        assert_eq!(baselines, [0, 0, 0]);
    }

    #[test]
    fn messages_runs_every_target_with_tls_off_and_on_against_the_same_mode() {
        let planned = plan(
            Service::Messages,
            Path::new("bin/messages"),
            Path::new("bin/baseline"),
            Path::new("/scratch"),
        );
        let names: Vec<&str> = planned.iter().map(|t| t.spec.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "baseline (bare axum, TLS off)",
                "baseline (bare axum, TLS on)",
                "messages (memory, TLS off)",
                "messages (memory, TLS on)",
                "messages (sqlite, TLS off)",
                "messages (sqlite, TLS on)",
            ]
        );
        for target in &planned {
            let baseline = &planned[target.baseline_idx];
            assert!(baseline.spec.name.starts_with("baseline"));
            assert_eq!(
                target.spec.tls_cert.is_some(),
                baseline.spec.tls_cert.is_some(),
                "{} is compared with {}",
                target.spec.name,
                baseline.spec.name
            );
        }
        // The two SQLite targets do not share a database.
        let sqlite_urls: Vec<&str> = planned
            .iter()
            .flat_map(|target| &target.spec.env)
            .filter(|(key, value)| key == "MESSAGES__STORAGE__URL" && value.starts_with("sqlite"))
            .map(|(_, value)| value.as_str())
            .collect();
        assert_eq!(sqlite_urls.len(), 2);
        assert_ne!(sqlite_urls[0], sqlite_urls[1]);
    }

    #[test]
    fn each_row_is_compared_with_its_own_baseline() {
        let run = |rps: f64| Summary {
            rps,
            ..Summary::new(&Recording::default(), Duration::from_secs(1))
        };
        let names: Vec<String> = ["plain baseline", "tls baseline", "plain", "tls"]
            .map(str::to_owned)
            .to_vec();
        let mut runs = BTreeMap::new();
        for (target_idx, rps) in [1000.0, 500.0, 800.0, 250.0].into_iter().enumerate() {
            runs.insert(
                (target_idx, Kind::Post),
                vec![run(rps - 10.0), run(rps), run(rps + 10.0)],
            );
        }
        let table = rows(&names, &[0, 1, 0, 1], &[Kind::Post], &runs).expect("every run");
        let ratios: Vec<Option<f64>> = table.iter().map(|row| row.ratio_to_baseline).collect();
        assert_eq!(ratios, [Some(1.0), Some(1.0), Some(0.8), Some(0.5)]);
        assert!(table.iter().all(|row| row.scenario == "POST"));
        assert_eq!(table[2].runs_rps, [790.0, 800.0, 810.0]);
        assert!(rows(&names, &[0, 1, 0, 1], &[Kind::Get], &runs).is_err());
    }
}
