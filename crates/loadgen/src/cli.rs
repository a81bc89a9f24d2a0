//! The command line of the `loadgen` binary.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::scenario::{Kind, Service};

/// Closed-loop load generator and benchmark harness.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Cli {
    /// Runtime worker threads for the load generator. 1 runs a single-threaded runtime, leaving
    /// the other cores to the server under test.
    #[arg(long, global = true, default_value_t = 1)]
    pub threads: usize,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load one HTTP server and print a JSON summary.
    Http(HttpArgs),
    /// Start a service (memory, SQLite; messages also with TLS off and on) and the bare baseline,
    /// load each, print a Markdown report.
    Bench(BenchArgs),
}

/// How long and how hard to load; shared by `http` and `bench`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Concurrent keep-alive connections, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Measured time per run, e.g. `8s`, `500ms`, `1m`.
    #[arg(long, value_parser = parse_duration, default_value = "8s")]
    pub duration: Duration,
    /// Unmeasured load before each measurement.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub warmup: Duration,
    /// Records written before a GET run and read during it: hello users, messages.
    #[arg(long, alias = "users", default_value_t = 1000)]
    pub fixtures: usize,
}

/// `loadgen http`.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Base URL of the server, `http://HOST:PORT` or `https://HOST:PORT`.
    #[arg(long)]
    pub url: String,
    /// For an `https://` URL: the PEM certificate to trust, and no other (e.g. the one
    /// `messages cert` prints). The name in the URL must be in it.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// The service behind the URL.
    #[arg(long, value_enum, default_value_t = Service::Hello)]
    pub service: Service,
    /// Which requests to send: get or put for hello, post or get for messages.
    #[arg(long, value_enum)]
    pub scenario: Kind,
    /// Load shape.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// `loadgen bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The service to benchmark; its section of the report has its own markers.
    #[arg(long, value_enum, default_value_t = Service::Hello)]
    pub service: Service,
    /// Load shape of every run.
    #[command(flatten)]
    pub load: LoadArgs,
    /// Runs per target and scenario; the report keeps the median by requests/s.
    #[arg(long, default_value_t = 3)]
    pub repetitions: usize,
    /// Rewrite the marked section of this Markdown file (created when absent).
    #[arg(long)]
    pub write: Option<PathBuf>,
}

/// Parses `250ms`, `10s`, `2m` or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let digits_end = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(digits_end);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{raw}` is not a duration such as 500ms, 10s or 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "" | "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number * 60)),
        _ => Err(format!(
            "`{raw}` has unit `{unit}`; use ms, s or m (500ms, 10s, 2m)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_ms_s_and_m() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "s", "1.5s", "10h", "-1s", "ten"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn the_command_line_parses() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "http",
            "--url",
            "http://127.0.0.1:1",
            "--scenario",
            "put",
            "--duration",
            "3s",
        ])
        .expect("valid command line");
        assert_eq!(cli.threads, 1);
        let Command::Http(args) = cli.command else {
            panic!("expected the http subcommand");
        };
        assert_eq!(args.service, Service::Hello);
        assert_eq!(args.scenario, Kind::Put);
        assert_eq!(args.ca_cert, None);
        assert_eq!(args.load.duration, Duration::from_secs(3));
        assert_eq!(args.load.connections, 64);
        assert_eq!(args.load.fixtures, 1000);
    }

    #[test]
    fn messages_over_tls_parse() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "http",
            "--url",
            "https://localhost:8082",
            "--ca-cert",
            "data/tls/messages.crt",
            "--service",
            "messages",
            "--scenario",
            "post",
            "--users",
            "10",
        ])
        .expect("valid command line");
        let Command::Http(args) = cli.command else {
            panic!("expected the http subcommand");
        };
        assert_eq!(args.service, Service::Messages);
        assert_eq!(args.scenario, Kind::Post);
        assert_eq!(args.ca_cert, Some(PathBuf::from("data/tls/messages.crt")));
        // `--users`, the older name, still sets the fixtures.
        assert_eq!(args.load.fixtures, 10);
    }

    #[test]
    fn bench_defaults_to_hello_and_takes_messages() {
        let parse = |extra: &[&str]| {
            let cli = Cli::try_parse_from(["loadgen", "bench"].iter().chain(extra))
                .expect("valid command line");
            let Command::Bench(args) = cli.command else {
                panic!("expected the bench subcommand");
            };
            args
        };
        let hello = parse(&[]);
        assert_eq!(hello.service, Service::Hello);
        assert_eq!(hello.repetitions, 3);
        assert_eq!(hello.write, None);
        let messages = parse(&[
            "--service",
            "messages",
            "--duration",
            "5s",
            "--warmup",
            "1s",
            "--write",
            "BENCHMARKS.md",
        ]);
        assert_eq!(messages.service, Service::Messages);
        assert_eq!(messages.load.duration, Duration::from_secs(5));
        assert_eq!(messages.load.warmup, Duration::from_secs(1));
        assert_eq!(messages.write, Some(PathBuf::from("BENCHMARKS.md")));
        assert!(Cli::try_parse_from(["loadgen", "bench", "--service", "chat"]).is_err());
    }
}
