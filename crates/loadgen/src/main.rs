//! The `loadgen` binary: `loadgen http` loads one server, `loadgen bench` runs the benchmark,
//! `loadgen soak` soaks one service, `loadgen charts` redraws the charts from their results.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use loadgen::cli::{BenchArgs, ChartsArgs, Cli, Command, HttpArgs, SoakArgs};
use loadgen::cpu::CpuMeter;
use loadgen::http::{self, Endpoint, Load};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Charts(args) = &cli.command {
        // Drawing needs no runtime.
        return charts_command(args);
    }
    // One thread runs a current-thread runtime, so the load generator holds exactly one core.
    let runtime = match cli.threads {
        0 => anyhow::bail!("--threads must be at least 1"),
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        threads => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build(),
    }
    .context("cannot start the async runtime")?;
    match cli.command {
        Command::Http(args) => runtime.block_on(http_command(args)),
        Command::Bench(args) => runtime.block_on(bench_command(args, cli.threads)),
        Command::Soak(args) => match args.service.http() {
            Some(service) => runtime.block_on(soak_command(args, service)),
            None => chat_soak(&args, cli.threads),
        },
        Command::Charts(args) => charts_command(&args),
    }
}

fn charts_command(args: &ChartsArgs) -> anyhow::Result<ExitCode> {
    let written = loadgen::charts::redraw(&args.dir)?;
    if written.is_empty() {
        anyhow::bail!("no chart data (*.json) in {}", args.dir.display());
    }
    for path in written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn http_command(args: HttpArgs) -> anyhow::Result<ExitCode> {
    let tls = args
        .ca_cert
        .as_deref()
        .map(loadgen::tls::client_config)
        .transpose()?;
    let endpoint = Endpoint::from_url(&args.url, tls).await?;
    let account = args.service.account(&endpoint, args.scenario).await?;
    let scenario = args
        .service
        .scenario(args.scenario, args.load.fixtures, &account)?;
    let load = Load {
        connections: args.load.connections,
        warmup: args.load.warmup,
        duration: args.load.duration,
    };
    let summary = http::run(
        &endpoint,
        scenario.as_ref(),
        load,
        &[CpuMeter::this_process()],
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if summary.errors > 0 {
        eprintln!(
            "loadgen: {} of {} requests failed; the run is suspect",
            summary.errors, summary.requests
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn bench_command(args: BenchArgs, threads: usize) -> anyhow::Result<ExitCode> {
    let section = loadgen::bench::run(&args, threads).await?;
    println!("{section}");
    if let Some(path) = &args.write {
        let document = match std::fs::read_to_string(path) {
            Ok(document) => document,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                "# Benchmarks\n".to_owned()
            }
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        let updated = loadgen::report::replace_section(&document, args.service.section(), &section)
            .with_context(|| format!("cannot update {}", path.display()))?;
        std::fs::write(path, updated)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("Updated {}.", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

async fn soak_command(
    args: SoakArgs,
    service: loadgen::scenario::Service,
) -> anyhow::Result<ExitCode> {
    let report = loadgen::soak::run(&args, service).await?;
    println!("{}", report.summary());
    if let Some(path) = &args.write {
        loadgen::soak::write(path, &report)?;
        eprintln!("Updated the soak table of {}.", path.display());
    }
    if let Some(dir) = &args.charts {
        for path in loadgen::charts::soak::write(dir, &report)? {
            eprintln!("Drew {}.", path.display());
        }
    }
    Ok(if report.failures().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `loadgen soak --service chat`: chat's load is WebSocket fan-out, which `chatload soak` (next
/// to this executable) generates; it gets the same options and its exit code is ours.
fn chat_soak(args: &SoakArgs, threads: usize) -> anyhow::Result<ExitCode> {
    let chatload = loadgen::bench::binary_dir()?.join("chatload");
    if !chatload.is_file() {
        anyhow::bail!(
            "{} not found; run `cargo build --release -p chat -p loadgen` first",
            chatload.display()
        );
    }
    let mut command = std::process::Command::new(&chatload);
    command
        .arg("--threads")
        .arg(threads.to_string())
        .arg("soak")
        .arg("--duration")
        .arg(format!("{}ms", args.duration.as_millis()))
        .arg("--max-growth-kib-per-min")
        .arg(args.max_growth_kib_per_min.to_string());
    if let Some(rate) = args.rate {
        command.arg("--rate").arg(rate.to_string());
    }
    if let Some(fraction) = args.peak_fraction {
        command.arg("--peak-fraction").arg(fraction.to_string());
    }
    if let Some(path) = &args.write {
        command.arg("--write").arg(path);
    }
    if let Some(dir) = &args.charts {
        command.arg("--charts").arg(dir);
    }
    if args.storage.is_some() || args.tls.is_some() {
        eprintln!(
            "loadgen: chat is soaked on its memory log and broker without TLS; --storage and --tls do not apply"
        );
    }
    let status = command
        .status()
        .with_context(|| format!("cannot run {}", chatload.display()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
