//! The command line of the `loadgen` binary.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::scenario::hello;

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
    /// Start hello (memory, SQLite) and the bare baseline, load each, print a Markdown report.
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
    /// Users written before a GET run and read during it.
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
}

/// `loadgen http`.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Base URL of the server, `http://HOST:PORT`.
    #[arg(long)]
    pub url: String,
    /// Which requests to send.
    #[arg(long, value_enum)]
    pub scenario: hello::Kind,
    /// Load shape.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// `loadgen bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
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
        assert_eq!(args.scenario, hello::Kind::Put);
        assert_eq!(args.load.duration, Duration::from_secs(3));
        assert_eq!(args.load.connections, 64);
    }
}
