//! The `loadgen` binary: `loadgen http` loads one server, `loadgen bench` runs the benchmark.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use loadgen::cli::{BenchArgs, Cli, Command, HttpArgs};
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
    }
}

async fn http_command(args: HttpArgs) -> anyhow::Result<ExitCode> {
    let tls = args
        .ca_cert
        .as_deref()
        .map(loadgen::tls::client_config)
        .transpose()?;
    let endpoint = Endpoint::from_url(&args.url, tls).await?;
    let scenario = args.service.scenario(args.scenario, args.load.fixtures)?;
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
        let updated = loadgen::report::replace_section(&document, args.service.name(), &section)
            .with_context(|| format!("cannot update {}", path.display()))?;
        std::fs::write(path, updated)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("Updated {}.", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
