//! `loadgen bench --service S`: starts S (or, for `all`, hello, messages and notes) on memory
//! and on SQLite, messages with TLS off and on, and the bare baseline in each TLS mode; loads
//! each with every scenario of its service, and reports the median of the repetitions against
//! the baseline of the same TLS mode, with the server's peak memory during each run.
//!
//! Repetitions are interleaved (round 1 of every target and scenario, then round 2, …), so a
//! burst of outside load on the machine hits all targets alike instead of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::charts::{self, Chart, http::HttpResults, http::HttpRow};
use crate::cli::{BenchArgs, Storage, TlsMode};
use crate::cpu::CpuMeter;
use crate::http::{self, Endpoint, Load};
use crate::memory;
use crate::progress::Progress;
use crate::report::{self, Row};
use crate::scenario::{Account, Kind, Service};
use crate::summary::{self, Summary};
use crate::target::{RunningTarget, ScratchDir, TargetSpec};

/// A server to start, what it is loaded with, and the one it is compared with.
#[derive(Debug, Clone)]
struct Planned {
    spec: TargetSpec,
    /// The service; `None` for the baseline.
    service: Option<Service>,
    /// Its storage; `None` for the baseline.
    storage: Option<Storage>,
    tls: TlsMode,
    /// Index in the plan of its baseline (its own, for a baseline): the one with its TLS mode.
    baseline_idx: usize,
    /// The scenarios it is loaded with, in order.
    scenarios: Vec<(Service, Kind)>,
}

/// Runs the whole benchmark and returns the Markdown section (without markers).
pub async fn run(args: &BenchArgs, threads: usize) -> anyhow::Result<String> {
    if args.repetitions == 0 {
        bail!("--repetitions must be at least 1");
    }
    let services = args.service.services();
    let bin_dir = binary_dir()?;
    let mut service_bins = BTreeMap::new();
    for &service in &services {
        service_bins.insert(service, sibling(&bin_dir, service.name(), &services)?);
    }
    let baseline_bin = sibling(&bin_dir, "baseline", &services)?;
    if bin_dir.file_name().is_some_and(|name| name == "debug") {
        eprintln!("warning: these are debug builds; numbers mean little. Use --release.");
    }
    let load_before = load_average();

    let scratch = ScratchDir::new("loadgen-bench")?;
    let planned = plan(
        &services,
        &service_bins,
        &baseline_bin,
        scratch.path(),
        args.postgres_url.as_deref(),
        args.dynamodb_url.as_deref(),
    );
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
    let mut peak_resets_work = true;
    let mut runs: BTreeMap<(usize, Service, Kind), Vec<Summary>> = BTreeMap::new();
    let pairs: usize = planned.iter().map(|target| target.scenarios.len()).sum();
    let mut progress = Progress::new(vec![load.warmup + load.duration; pairs * args.repetitions]);
    for round in 1..=args.repetitions {
        for (target_idx, (target, endpoint)) in targets.iter().zip(&endpoints).enumerate() {
            let plan = &planned[target_idx];
            for &(service, kind) in &plan.scenarios {
                progress.step(&format!(
                    "{} {}, round {round}/{}",
                    target.name,
                    service.route(kind),
                    args.repetitions
                ));
                let account = match plan.service {
                    Some(_) => service.account(endpoint, kind).await.with_context(|| {
                        format!("cannot set up {} {}", target.name, kind.name())
                    })?,
                    None => Account::stand_in(),
                };
                let scenario = service.scenario(kind, args.load.fixtures, &account)?;
                let meters: Vec<CpuMeter> = std::iter::once(CpuMeter::this_process())
                    .chain(target.cpu_meter())
                    .collect();
                // The peak covers this run only: fixtures, warm-up and window.
                if let Some(pid) = target.pid()
                    && let Err(error) = memory::reset_peak(pid)
                    && peak_resets_work
                {
                    progress.println(&format!(
                        "warning: cannot reset the peak RSS of {} ({error}); peaks count from each server's start",
                        target.name
                    ));
                    peak_resets_work = false;
                }
                let mut summary = http::run(endpoint, scenario.as_ref(), load, &meters)
                    .await
                    .with_context(|| format!("{} {} failed", target.name, kind.name()))?;
                summary.server_peak_rss_bytes = target.pid().and_then(memory::peak_rss_bytes);
                progress.println(&format!(
                    "round {round}/{reps}: {name} {route}: {rps:.0} req/s, p50 {p50:.2} ms, p99 {p99:.2} ms, p99.9 {p999:.2} ms, peak RSS {rss} MiB, {errors} errors {kinds:?}, CPU s {cpu:?}",
                    reps = args.repetitions,
                    name = target.name,
                    route = service.route(kind),
                    rps = summary.rps,
                    p50 = summary.p50_ms,
                    p99 = summary.p99_ms,
                    p999 = summary.p999_ms,
                    rss = summary
                        .server_peak_rss_bytes
                        .map_or_else(|| "n/a".to_owned(), report::mebibytes),
                    errors = summary.errors,
                    kinds = summary.error_kinds,
                    cpu = summary.cpu_seconds,
                ));
                runs.entry((target_idx, service, kind))
                    .or_default()
                    .push(summary);
            }
        }
    }
    progress.finish();
    for target in targets {
        target.stop().await?;
    }
    drop(scratch);

    let rows = rows(&services, &planned, &runs)?;
    let tls_note = if planned.iter().any(|target| target.tls == TlsMode::On) {
        " TLS on: rustls with ring on both ends, HTTP/1.1 by ALPN, handshakes done before the clock starts; \"vs baseline\" compares with the baseline of the same TLS mode."
    } else {
        ""
    };
    let peak_note = if peak_resets_work {
        "Peak RSS: the server's VmHWM after the run, reset through /proc/PID/clear_refs before it, so it covers that run's fixtures, warm-up and window."
    } else {
        "Peak RSS: the server's VmHWM since it started (this kernel refused to reset it before each run)."
    };
    let context = report::Context {
        date: time::OffsetDateTime::now_utc().date().to_string(),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model: std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| report::cpu_model(&text)),
        rustc: rustc_version(),
        smoke_run: load.duration < report::MEASUREMENT_WINDOW
            || args.repetitions < report::MEASUREMENT_RUNS,
        load_before,
        load_after: load_average(),
        command: report::this_command_line(),
        method: format!(
            "Closed loop, {connections} keep-alive connections, {warmup:?} warm-up then {duration:?} measured, median of {reps} interleaved runs by requests/s; loadgen on {threads} runtime thread(s), servers on their default runtime (one worker per CPU); {fixtures} records for hello's and messages' GET, {listed} notes in notes' list, a new notes user per run. {peak_note}{tls_note}",
            connections = load.connections,
            warmup = load.warmup,
            duration = load.duration,
            reps = args.repetitions,
            fixtures = args.load.fixtures,
            listed = crate::scenario::notes::LISTED_NOTES,
        ),
    };
    if let Some(dir) = &args.charts {
        let results = HttpResults {
            date: context.date.clone(),
            smoke_run: context.smoke_run,
            rows: rows.iter().map(HttpRow::from_report).collect(),
        };
        let stem = format!("http-{}", args.service.section());
        for path in charts::write(dir, &stem, &Chart::Http(results))? {
            eprintln!("Drew {}.", path.display());
        }
    }
    Ok(report::render(&context, &rows))
}

/// The TLS modes `service` is measured in: messages, TLS by default, both ways; the others
/// serve plain HTTP.
fn tls_modes(service: Service) -> &'static [TlsMode] {
    if service.tls_by_default() {
        &[TlsMode::Off, TlsMode::On]
    } else {
        &[TlsMode::Off]
    }
}

/// The targets for `services`, in report order: the baseline in each TLS mode any service needs
/// (loaded with the scenarios of every service measured in that mode), then each service on
/// memory and on SQLite in each of its TLS modes, on PostgreSQL (TLS off) when `postgres_url`
/// is given, and hello on a DynamoDB emulator when `dynamodb_url` is given. Certificates and
/// databases go under `scratch`.
fn plan(
    services: &[Service],
    service_bins: &BTreeMap<Service, PathBuf>,
    baseline_bin: &Path,
    scratch: &Path,
    postgres_url: Option<&str>,
    dynamodb_url: Option<&str>,
) -> Vec<Planned> {
    let cert_dir = scratch.join("tls");
    let tls_dir = |mode: TlsMode| (mode == TlsMode::On).then_some(cert_dir.as_path());
    let mut modes: Vec<TlsMode> = services
        .iter()
        .flat_map(|&service| tls_modes(service).iter().copied())
        .collect();
    modes.sort();
    modes.dedup();
    // With a single mode the names say nothing about TLS, as they always have for hello.
    let label = |what: &str, mode: TlsMode, modes: usize| match modes {
        1 => what.to_owned(),
        _ => format!("{what}, TLS {}", mode.name()),
    };
    let mut planned: Vec<Planned> = modes
        .iter()
        .enumerate()
        .map(|(mode_idx, &mode)| Planned {
            spec: TargetSpec::baseline(
                &format!("baseline ({})", label("bare axum", mode, modes.len())),
                baseline_bin,
                tls_dir(mode),
            ),
            service: None,
            storage: None,
            tls: mode,
            baseline_idx: mode_idx,
            scenarios: services
                .iter()
                .filter(|&&service| tls_modes(service).contains(&mode))
                .flat_map(|&service| service.kinds().iter().map(move |&kind| (service, kind)))
                .collect(),
        })
        .collect();
    for &service in services {
        let service_modes = tls_modes(service);
        let storages = [Storage::Memory, Storage::Sqlite]
            .into_iter()
            .chain(postgres_url.map(|_| Storage::Postgres))
            // hello's rows answer the DynamoDB issue; the others would measure the emulator.
            .chain(
                dynamodb_url
                    .filter(|_| service == Service::Hello)
                    .map(|_| Storage::DynamoDb),
            );
        for storage in storages {
            for &mode in service_modes {
                // One server database for all: a PostgreSQL row says what the backend costs, and
                // TLS to the client changes nothing there.
                if matches!(storage, Storage::Postgres | Storage::DynamoDb) && mode == TlsMode::On {
                    continue;
                }
                let storage_url = match storage {
                    Storage::Postgres => postgres_url.unwrap_or_default().to_owned(),
                    Storage::DynamoDb => dynamodb_url.unwrap_or_default().to_owned(),
                    Storage::Memory => "memory:".to_owned(),
                    Storage::Sqlite => {
                        // One file per target: no two servers share a database.
                        let file = scratch.join(format!("{}-{}.db", service.name(), mode.name()));
                        format!("sqlite://{}", file.display())
                    }
                };
                let baseline_idx = modes
                    .iter()
                    .position(|&baseline_mode| baseline_mode == mode)
                    .expect("every service's modes are among the baselines'");
                planned.push(Planned {
                    spec: TargetSpec::service(
                        service.name(),
                        &format!(
                            "{} ({})",
                            service.name(),
                            label(storage.name(), mode, service_modes.len())
                        ),
                        &service_bins[&service],
                        &storage_url,
                        tls_dir(mode),
                    ),
                    service: Some(service),
                    storage: Some(storage),
                    tls: mode,
                    baseline_idx,
                    scenarios: service
                        .kinds()
                        .iter()
                        .map(|&kind| (service, kind))
                        .collect(),
                });
            }
        }
    }
    planned
}

/// Table rows, by service, then scenario, then target in plan order (baselines first), with
/// each median's ratio to that of the target's baseline for the same scenario.
fn rows(
    services: &[Service],
    planned: &[Planned],
    runs: &BTreeMap<(usize, Service, Kind), Vec<Summary>>,
) -> anyhow::Result<Vec<Row>> {
    let median_of = |target_idx: usize, service: Service, kind: Kind| {
        runs.get(&(target_idx, service, kind))
            .and_then(|summaries| summary::median_by_rps(summaries))
    };
    let mut rows = Vec::new();
    for &service in services {
        for &kind in service.kinds() {
            for (target_idx, target) in planned.iter().enumerate() {
                if !target.scenarios.contains(&(service, kind)) {
                    continue;
                }
                let name = &target.spec.name;
                let summaries = runs
                    .get(&(target_idx, service, kind))
                    .with_context(|| format!("no runs of {name} {kind:?}"))?;
                let median = median_of(target_idx, service, kind)
                    .with_context(|| format!("no runs of {name} {kind:?}"))?
                    .clone();
                let ratio_to_baseline = median_of(target.baseline_idx, service, kind)
                    .map(|baseline| baseline.rps)
                    .filter(|&rps| rps > 0.0)
                    .map(|rps| median.rps / rps);
                rows.push(Row {
                    service: target
                        .service
                        .map_or("baseline (bare axum)", Service::name)
                        .to_owned(),
                    backend: target.storage.map_or("-", Storage::name).to_owned(),
                    tls: target.tls.name().to_owned(),
                    scenario: service.route(kind),
                    runs_rps: summaries.iter().map(|summary| summary.rps).collect(),
                    errors: summaries.iter().map(|summary| summary.errors).sum(),
                    median,
                    ratio_to_baseline,
                });
            }
        }
    }
    Ok(rows)
}

/// The directory of this executable, where Cargo also puts the services and `baseline`.
pub fn binary_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this executable")?;
    exe.parent()
        .map(Path::to_owned)
        .with_context(|| format!("{} has no parent directory", exe.display()))
}

/// The executable `name` in `dir`, or an error that says how to build what `services` need.
pub fn sibling(dir: &Path, name: &str, services: &[Service]) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        let packages: Vec<String> = services
            .iter()
            .map(|service| format!("-p {}", service.name()))
            .collect();
        bail!(
            "{} not found; run `cargo build --release {} -p loadgen` first",
            path.display(),
            packages.join(" ")
        );
    }
    Ok(path)
}

/// `rustc --version`.
pub fn rustc_version() -> Option<String> {
    let output = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    output.status.success().then(|| version.trim().to_owned())
}

/// `/proc/loadavg`'s three averages.
pub fn load_average() -> Option<String> {
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

    fn planned(services: &[Service]) -> Vec<Planned> {
        planned_with(services, None, None)
    }

    fn planned_with(
        services: &[Service],
        postgres_url: Option<&str>,
        dynamodb_url: Option<&str>,
    ) -> Vec<Planned> {
        let bins = services
            .iter()
            .map(|&service| (service, PathBuf::from(format!("bin/{}", service.name()))))
            .collect();
        plan(
            services,
            &bins,
            Path::new("bin/baseline"),
            Path::new("/scratch"),
            postgres_url,
            dynamodb_url,
        )
    }

    fn names(planned: &[Planned]) -> Vec<&str> {
        planned.iter().map(|t| t.spec.name.as_str()).collect()
    }

    #[test]
    fn a_postgres_url_adds_one_plain_target_per_service_on_it() {
        let url = "postgres://bench@db/test";
        let planned = planned_with(&[Service::Hello, Service::Messages], Some(url), None);
        let on_postgres: Vec<(&str, TlsMode)> = planned
            .iter()
            .filter(|target| target.storage == Some(Storage::Postgres))
            .map(|target| (target.spec.name.as_str(), target.tls))
            .collect();
        assert_eq!(
            on_postgres,
            [
                ("hello (postgres)", TlsMode::Off),
                ("messages (postgres, TLS off)", TlsMode::Off)
            ]
        );
        let urls = planned
            .iter()
            .filter(|target| target.storage == Some(Storage::Postgres))
            .flat_map(|target| target.spec.env.iter())
            .filter(|(key, _)| key.ends_with("__STORAGE__URL"))
            .map(|(_, value)| value.as_str());
        assert!(urls.clone().count() == 2 && urls.into_iter().all(|value| value == url));
    }

    #[test]
    fn a_dynamodb_url_adds_one_emulator_target_for_hello_only() {
        let url = "dynamodb://bench?region=us-east-1&endpoint=http://127.0.0.1:8000";
        let planned = planned_with(&[Service::Hello, Service::Messages], None, Some(url));
        let on_dynamodb: Vec<&Planned> = planned
            .iter()
            .filter(|target| target.storage == Some(Storage::DynamoDb))
            .collect();
        assert_eq!(on_dynamodb.len(), 1);
        assert_eq!(on_dynamodb[0].spec.name, "hello (DynamoDB emulator)");
        assert!(
            on_dynamodb[0]
                .spec
                .env
                .iter()
                .any(|(key, value)| key == "HELLO__STORAGE__URL" && value == url)
        );
    }

    #[test]
    fn hello_keeps_its_three_plain_targets() {
        let planned = planned(&[Service::Hello]);
        assert_eq!(
            names(&planned),
            ["baseline (bare axum)", "hello (memory)", "hello (sqlite)"]
        );
        assert!(planned.iter().all(|target| target.baseline_idx == 0));
        assert_eq!(
            planned[0].scenarios,
            [(Service::Hello, Kind::Get), (Service::Hello, Kind::Put)]
        );
    }

    #[test]
    fn messages_runs_every_target_with_tls_off_and_on_against_the_same_mode() {
        let planned = planned(&[Service::Messages]);
        assert_eq!(
            names(&planned),
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
            assert_eq!(target.tls, baseline.tls, "{}", target.spec.name);
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
    fn all_runs_every_service_against_baselines_that_serve_each_scenario() {
        let planned = planned(&Service::ALL);
        assert_eq!(
            names(&planned),
            [
                "baseline (bare axum, TLS off)",
                "baseline (bare axum, TLS on)",
                "hello (memory)",
                "hello (sqlite)",
                "messages (memory, TLS off)",
                "messages (memory, TLS on)",
                "messages (sqlite, TLS off)",
                "messages (sqlite, TLS on)",
                "notes (memory)",
                "notes (sqlite)",
            ]
        );
        // The plain baseline serves every service's scenarios, the TLS one only messages'.
        assert_eq!(planned[0].scenarios.len(), 6);
        assert_eq!(
            planned[1].scenarios,
            [
                (Service::Messages, Kind::Post),
                (Service::Messages, Kind::Get)
            ]
        );
        for target in &planned[2..] {
            let baseline = &planned[target.baseline_idx];
            assert_eq!(target.tls, baseline.tls, "{}", target.spec.name);
            for scenario in &target.scenarios {
                assert!(
                    baseline.scenarios.contains(scenario),
                    "{} runs {scenario:?}, which its baseline does not",
                    target.spec.name
                );
            }
        }
        let notes_env: Vec<&(String, String)> = planned[9].spec.env.iter().collect();
        assert!(
            notes_env
                .iter()
                .any(|(key, value)| key == "NOTES__STORAGE__URL" && value.ends_with("notes-off.db"))
        );
    }

    #[test]
    fn each_row_is_compared_with_its_own_baseline() {
        let run = |rps: f64| Summary {
            rps,
            ..Summary::new(&Recording::default(), Duration::from_secs(1))
        };
        let planned = planned(&[Service::Messages]);
        let mut runs = BTreeMap::new();
        // Baseline off, baseline on, memory off, memory on; SQLite left out.
        for (target_idx, rps) in [1000.0, 500.0, 800.0, 250.0].into_iter().enumerate() {
            runs.insert(
                (target_idx, Service::Messages, Kind::Post),
                vec![run(rps - 10.0), run(rps), run(rps + 10.0)],
            );
        }
        let first_four = &planned[..4];
        let posts: Vec<Planned> = first_four
            .iter()
            .cloned()
            .map(|mut target| {
                target.scenarios.retain(|&(_, kind)| kind == Kind::Post);
                target
            })
            .collect();
        let table = rows(&[Service::Messages], &posts, &runs).expect("every run");
        let ratios: Vec<Option<f64>> = table.iter().map(|row| row.ratio_to_baseline).collect();
        assert_eq!(ratios, [Some(1.0), Some(1.0), Some(0.8), Some(0.5)]);
        assert!(table.iter().all(|row| row.scenario == "POST /messages"));
        let cells: Vec<(&str, &str, &str)> = table
            .iter()
            .map(|row| (row.service.as_str(), row.backend.as_str(), row.tls.as_str()))
            .collect();
        assert_eq!(
            cells,
            [
                ("baseline (bare axum)", "-", "off"),
                ("baseline (bare axum)", "-", "on"),
                ("messages", "memory", "off"),
                ("messages", "memory", "on"),
            ]
        );
        assert_eq!(table[2].runs_rps, [790.0, 800.0, 810.0]);
        // A planned scenario without runs is an error, not a silent gap.
        assert!(rows(&[Service::Messages], first_four, &runs).is_err());
    }
}
