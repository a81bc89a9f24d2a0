//! chatload: an open-loop load generator for chat's WebSocket fan-out.
//!
//! It joins rooms through the real protocol, publishes on a fixed schedule whatever the replies
//! (so slow answers cannot hide latency), stamps each payload with its scheduled send time, and
//! checks every receiver for gaps and duplicates. `bench` starts the servers itself and writes
//! the report into BENCHMARKS.md; `soak` holds one server at a fixed rate for a minute and
//! watches its memory.
//!
//! The command line only; the load generator itself is the library's `loadgen::chat`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};
use loadgen::chat::{bench, fanout, idle, report, servers, soak};
use loadgen::cli::{parse_duration, parse_fraction};

#[derive(Debug, Parser)]
#[command(
    name = "chatload",
    about = "Open-loop load for chat's WebSocket fan-out."
)]
struct Cli {
    /// Runtime threads of the load generator; 1 (default) is a current-thread runtime, leaving
    /// the other core to the server.
    #[arg(long, default_value_t = 1, global = true)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Rooms with members and publishers on a fixed schedule.
    Fanout(FanoutArgs),
    /// Many joined connections that only listen; reports server RSS per connection.
    Idle(IdleArgs),
    /// (internal) One idle worker process.
    #[command(hide = true)]
    IdleWorker(WorkerArgs),
    /// Starts the servers, runs the targets and writes BENCHMARKS.md.
    Bench(BenchArgs),
    /// Starts one server and holds a 100-member room at a fixed rate, by default for a minute,
    /// sampling its RSS; exits 1 on any delivery error or on memory that keeps growing.
    Soak(SoakArgs),
}

#[derive(Debug, Args)]
struct Servers {
    /// Server URLs, comma-separated (`ws://127.0.0.1:8084/ws`); members go round-robin.
    #[arg(long, value_delimiter = ',', required = true)]
    urls: Vec<String>,
    /// The servers' PIDs, for CPU time and RSS.
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
}

#[derive(Debug, Args)]
struct FanoutArgs {
    #[command(flatten)]
    servers: Servers,
    #[arg(long, default_value_t = 1)]
    rooms: u32,
    #[arg(long, default_value_t = 100)]
    members: u32,
    /// Publishers per room (they are members too).
    #[arg(long, default_value_t = 10)]
    publishers: u32,
    /// Messages per second over all rooms.
    #[arg(long, default_value_t = 300.0)]
    rate: f64,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    drain: Duration,
    #[arg(long, default_value_t = 3)]
    repetitions: usize,
    #[arg(long, default_value_t = 64)]
    message_bytes: usize,
}

#[derive(Debug, Args)]
struct IdleArgs {
    #[command(flatten)]
    servers: Servers,
    #[arg(long, default_value_t = 10_000)]
    connections: u64,
    /// Worker processes (each may hold at most ~19,000 connections: one fd each).
    #[arg(long, default_value_t = 1)]
    processes: u64,
    #[arg(long, default_value_t = 100)]
    room_size: u64,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    hold: Duration,
}

#[derive(Debug, Args)]
struct WorkerArgs {
    #[arg(long, value_delimiter = ',')]
    urls: Vec<String>,
    #[arg(long)]
    first: u64,
    #[arg(long)]
    count: u64,
    #[arg(long)]
    room_size: u64,
    #[arg(long)]
    tag: String,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Groups to run (default all): idle1, idle3, slo, latency, max1, max3.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Writes the report between the `bench:chat` markers of this file.
    #[arg(long)]
    write: Option<PathBuf>,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    #[arg(long, default_value_t = 3)]
    repetitions: usize,
    /// Messages/s tried for the maximum (100-member room), in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,2000,4000,6000,8000,10000,11000,12000,14000,16000"
    )]
    ladder: Vec<f64>,
    #[arg(long, default_value_t = 19_000)]
    idle_single: u64,
    #[arg(long, default_value_t = 50_000)]
    idle_multi: u64,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    hold: Duration,
    #[arg(long, default_value_t = 64)]
    message_bytes: usize,
    /// Keeps the ladders as `DIR/chat-ladder.json` and draws `DIR/chat-ladder.svg`.
    #[arg(long, value_name = "DIR")]
    charts: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("how_fast").required(true).args(["rate", "peak_fraction"])))]
struct SoakArgs {
    /// Messages per second into the room (each reaches its 100 members).
    #[arg(long)]
    rate: Option<f64>,
    /// Instead of --rate: this fraction of the highest passing rate of --ladder, e.g. 0.8.
    #[arg(long, value_parser = parse_fraction)]
    peak_fraction: Option<f64>,
    /// Messages/s tried for the maximum, in order (one 1 s + 5 s run each).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,2000,4000,6000,8000,10000,11000,12000,14000,16000"
    )]
    ladder: Vec<f64>,
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Fail when the server's RSS grows faster than this after the first sixth of the soak.
    #[arg(long, default_value_t = 1024.0)]
    max_growth_kib_per_min: f64,
    #[arg(long, default_value_t = 64)]
    message_bytes: usize,
    /// Puts the result's row into the `bench:soak` table of this file.
    #[arg(long)]
    write: Option<PathBuf>,
    /// Keeps the RSS samples as `DIR/soak-chat-memory-tls-off.json` and draws them beside it.
    #[arg(long, value_name = "DIR")]
    charts: Option<PathBuf>,
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()?
    };
    let passed = runtime.block_on(run(cli.command))?;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs `command`; `false` when it ran but failed its check (a soak).
async fn run(command: Command) -> anyhow::Result<bool> {
    let tag = format!("c{}", std::process::id());
    match command {
        Command::Fanout(args) => {
            let spec = fanout::FanoutSpec {
                urls: args.servers.urls,
                rooms: args.rooms,
                members: args.members,
                publishers: args.publishers,
                rate: args.rate,
                warmup: args.warmup,
                duration: args.duration,
                drain: args.drain,
                message_bytes: args.message_bytes,
            };
            let probe = servers::Probe::new(args.servers.server_pid);
            let mut runs = Vec::new();
            for repetition in 0..args.repetitions {
                let run = fanout::run(&spec, &probe, &format!("{tag}-{repetition}")).await?;
                eprintln!(
                    "run {repetition}: {:.0} deliveries/s (offered {:.0}), p50 {:.2} p99 {:.2} p999 {:.2} ms, gaps {} dups {} missing {} closed {} errors {}, loadgen CPU {:?}",
                    run.deliveries_per_sec(),
                    spec.offered(),
                    run.latency_ms(0.5),
                    run.latency_ms(0.99),
                    run.latency_ms(0.999),
                    run.counts.gaps,
                    run.counts.duplicates,
                    run.missing(),
                    run.counts.closed,
                    run.counts.errors,
                    run.loadgen_cpu,
                );
                runs.push(run);
            }
            println!("{}", report::FANOUT_HEADER);
            println!(
                "{}",
                report::fanout_row(
                    &report::FanoutRow {
                        scenario: "fanout",
                        servers: &spec.urls.len().to_string(),
                        rooms: spec.rooms,
                        members: spec.members,
                        publishers: spec.publishers,
                        rate: spec.rate,
                        target: "-",
                        met: true,
                    },
                    &runs,
                )
            );
        }
        Command::Idle(args) => {
            let spec = idle::IdleSpec {
                urls: args.servers.urls,
                connections: args.connections,
                processes: args.processes,
                room_size: args.room_size,
                hold: args.hold,
            };
            let probe = servers::Probe::new(args.servers.server_pid);
            let result = idle::run(&spec, &probe, &tag).await?;
            println!("{}", report::IDLE_HEADER);
            println!(
                "{}",
                report::idle_row("idle", &spec.urls.len().to_string(), &[result], "-", true)
            );
        }
        Command::IdleWorker(args) => {
            idle::worker(args.urls, args.first, args.count, args.room_size, args.tag).await?;
        }
        Command::Bench(args) => {
            let command_line = loadgen::report::this_command_line();
            let options = bench::BenchOptions {
                only: args.only,
                write: args.write,
                warmup: args.warmup,
                duration: args.duration,
                repetitions: args.repetitions,
                ladder: args.ladder,
                idle_single: args.idle_single,
                idle_multi: args.idle_multi,
                hold: args.hold,
                message_bytes: args.message_bytes,
                command_line,
                charts: args.charts,
            };
            bench::run(&options).await?;
        }
        Command::Soak(args) => {
            let options = soak::SoakOptions {
                rate: args.rate,
                peak_fraction: args.peak_fraction,
                ladder: args.ladder,
                duration: args.duration,
                max_growth_kib_per_min: args.max_growth_kib_per_min,
                message_bytes: args.message_bytes,
                write: args.write,
                charts: args.charts,
            };
            return soak::run(&options).await;
        }
    }
    Ok(true)
}
