//! The command line of the `loadgen` binary.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

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
    /// Start a service, or all of them (memory, SQLite; messages also with TLS off and on), and
    /// the bare baseline, load each, print a Markdown report.
    Bench(BenchArgs),
    /// Load one service open-loop at a fixed rate for a minute, sample its memory every second,
    /// and fail on any error or on memory that keeps growing.
    Soak(SoakArgs),
    /// Redraw every chart from the results kept beside it (`DIR/*.json`), without measuring.
    Charts(ChartsArgs),
}

/// `loadgen charts`.
#[derive(Debug, Clone, Args)]
pub struct ChartsArgs {
    /// The directory of the charts and their `*.json` results.
    #[arg(long, default_value = crate::charts::DEFAULT_DIR)]
    pub dir: PathBuf,
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
    /// Records written before a GET run and read during it: hello users, messages. (notes' list
    /// always reads its user's 20 notes.)
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
    /// Which requests to send: get or put for hello, post or get for messages and notes, or the
    /// soak's mix for any.
    #[arg(long, value_enum)]
    pub scenario: Kind,
    /// Load shape.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// What `loadgen bench` measures: one service, or every one in a single run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// hello against the baseline.
    Hello,
    /// messages, TLS off and on, against the baseline in each mode.
    Messages,
    /// notes' JSON API against the baseline.
    Notes,
    /// hello, messages and notes against the baseline, in one run and one table.
    All,
}

impl Suite {
    /// The services it measures, in report order.
    pub fn services(self) -> Vec<Service> {
        match self {
            Suite::Hello => vec![Service::Hello],
            Suite::Messages => vec![Service::Messages],
            Suite::Notes => vec![Service::Notes],
            Suite::All => Service::ALL.to_vec(),
        }
    }

    /// The name of its marked section of `BENCHMARKS.md`: `hello` for `bench:hello`, `all`.
    pub fn section(self) -> &'static str {
        match self {
            Suite::Hello => "hello",
            Suite::Messages => "messages",
            Suite::Notes => "notes",
            Suite::All => "all",
        }
    }
}

/// `loadgen bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// What to benchmark; each choice has its own marked section of the report.
    #[arg(long, value_enum, default_value_t = Suite::Hello)]
    pub service: Suite,
    /// Load shape of every run.
    #[command(flatten)]
    pub load: LoadArgs,
    /// Runs per target and scenario; the report keeps the median by requests/s.
    #[arg(long, default_value_t = 3)]
    pub repetitions: usize,
    /// Rewrite the marked section of this Markdown file (created when absent).
    #[arg(long)]
    pub write: Option<PathBuf>,
    /// Keep the results as `DIR/http-SECTION.json` and draw them beside it
    /// (`http-SECTION-requests.svg`, `http-SECTION-p99.svg`).
    #[arg(long, value_name = "DIR")]
    pub charts: Option<PathBuf>,
    /// Also measure each service on this PostgreSQL database (TLS off), beside memory and SQLite.
    #[arg(long)]
    pub postgres_url: Option<String>,
    /// Also measure hello on this DynamoDB emulator (`dynamodb://TABLE?region=…&endpoint=…`,
    /// credentials from the environment). Its rows are labelled as an emulator: they say what
    /// the code path costs on this machine, not what DynamoDB in the cloud answers in.
    #[arg(long)]
    pub dynamodb_url: Option<String>,
}

/// A service `loadgen soak` can soak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SoakService {
    /// hello, mixed reads and overwrites of users.
    Hello,
    /// messages, mixed reads and re-posts of messages.
    Messages,
    /// notes' API, mixed lists and updates of a user's notes.
    Notes,
    /// chat, by `chatload soak` (next to this executable) with the same options.
    Chat,
}

impl SoakService {
    /// The HTTP service, or `None` for chat.
    pub fn http(self) -> Option<Service> {
        match self {
            SoakService::Hello => Some(Service::Hello),
            SoakService::Messages => Some(Service::Messages),
            SoakService::Notes => Some(Service::Notes),
            SoakService::Chat => None,
        }
    }
}

/// Where a service under test keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Storage {
    /// `memory:` (for notes an in-process SQLite database).
    Memory,
    /// A fresh SQLite file (WAL, `synchronous = FULL`), the services' default backend.
    Sqlite,
    /// The PostgreSQL server `--postgres-url` names (bench only).
    Postgres,
    /// The DynamoDB emulator `--dynamodb-url` names (bench only, hello only).
    DynamoDb,
}

impl Storage {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Storage::Memory => "memory",
            Storage::Sqlite => "sqlite",
            Storage::Postgres => "postgres",
            Storage::DynamoDb => "DynamoDB emulator",
        }
    }
}

/// Whether the service under test serves TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum TlsMode {
    /// Plain HTTP.
    Off,
    /// TLS with a self-signed certificate that the load generator trusts.
    On,
}

impl TlsMode {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            TlsMode::Off => "off",
            TlsMode::On => "on",
        }
    }
}

/// `loadgen soak`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("how_fast").required(true).args(["rate", "peak_fraction"])))]
pub struct SoakArgs {
    /// The service to soak.
    #[arg(long, value_enum)]
    pub service: SoakService,
    /// Its storage; by default SQLite, the services' own default (chat: its memory log and
    /// broker, the only choice).
    #[arg(long, value_enum)]
    pub storage: Option<Storage>,
    /// TLS; by default the service's own default (on for messages, off for the others).
    #[arg(long, value_enum)]
    pub tls: Option<TlsMode>,
    /// Requests per second offered (chat: messages per second into one 100-member room).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Instead of --rate: first measure the peak (closed loop with the same mix for
    /// --peak-duration; chat: chatload's ladder), then offer this fraction of it, e.g. 0.8.
    #[arg(long, value_parser = parse_fraction)]
    pub peak_fraction: Option<f64>,
    /// How long the rate is offered.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub duration: Duration,
    /// Measured time of the peak measurement (after a 1 s warm-up).
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub peak_duration: Duration,
    /// Connections, each with at most one request in flight (also for the peak measurement).
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Records written before the soak and then read and overwritten: hello users, messages.
    #[arg(long, default_value_t = 1000)]
    pub fixtures: usize,
    /// Fail when the server's RSS grows faster than this over the soak after its first sixth
    /// (least-squares slope, KiB per minute). See BENCHMARKS.md for why 1 MiB/min.
    #[arg(long, default_value_t = 1024.0)]
    pub max_growth_kib_per_min: f64,
    /// Put the result's row into the `bench:soak` table of this Markdown file (created when
    /// absent), replacing the previous row of the same service and storage.
    #[arg(long)]
    pub write: Option<PathBuf>,
    /// Keep the RSS samples as `DIR/soak-SERVICE-BACKEND.json` and draw them with the fitted
    /// slope beside it (`.svg`).
    #[arg(long, value_name = "DIR")]
    pub charts: Option<PathBuf>,
}

/// Parses a fraction in (0, 1], e.g. `0.8`.
pub fn parse_fraction(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(fraction) if fraction > 0.0 && fraction <= 1.0 => Ok(fraction),
        _ => Err(format!("`{raw}` is not a fraction in (0, 1] such as 0.8")),
    }
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
    fn fractions_are_in_zero_to_one() {
        assert_eq!(parse_fraction("0.8"), Ok(0.8));
        assert_eq!(parse_fraction("1"), Ok(1.0));
        for bad in ["0", "-0.5", "1.2", "80%", "", "NaN"] {
            assert!(parse_fraction(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn soak_takes_a_rate_or_a_peak_fraction_but_not_both() {
        let parse = |extra: &[&str]| {
            Cli::try_parse_from(["loadgen", "soak"].iter().chain(extra)).map(|cli| {
                let Command::Soak(args) = cli.command else {
                    panic!("expected the soak subcommand");
                };
                args
            })
        };
        let fixed = parse(&["--service", "hello", "--rate", "5000"]).expect("a rate");
        assert_eq!(fixed.service, SoakService::Hello);
        assert_eq!(fixed.rate, Some(5000.0));
        assert_eq!(fixed.peak_fraction, None);
        assert_eq!(fixed.duration, Duration::from_secs(60));
        assert_eq!(fixed.storage, None);
        assert_eq!(fixed.tls, None);
        assert_eq!(fixed.max_growth_kib_per_min, 1024.0);

        let measured = parse(&[
            "--service",
            "messages",
            "--peak-fraction",
            "0.8",
            "--storage",
            "memory",
            "--tls",
            "off",
            "--duration",
            "5s",
            "--write",
            "BENCHMARKS.md",
        ])
        .expect("a peak fraction");
        assert_eq!(measured.service.http(), Some(Service::Messages));
        assert_eq!(measured.peak_fraction, Some(0.8));
        assert_eq!(measured.storage, Some(Storage::Memory));
        assert_eq!(measured.tls, Some(TlsMode::Off));
        assert_eq!(measured.duration, Duration::from_secs(5));
        assert_eq!(measured.write, Some(PathBuf::from("BENCHMARKS.md")));

        assert_eq!(
            parse(&["--service", "chat", "--rate", "800"])
                .expect("chat")
                .service
                .http(),
            None
        );
        assert!(parse(&["--service", "hello"]).is_err(), "no rate at all");
        assert!(
            parse(&[
                "--service",
                "hello",
                "--rate",
                "1",
                "--peak-fraction",
                "0.8"
            ])
            .is_err(),
            "both"
        );
        assert!(parse(&["--service", "hello", "--peak-fraction", "2"]).is_err());
    }

    #[test]
    fn charts_are_redrawn_from_bench_charts_unless_told_otherwise() {
        let parse = |extra: &[&str]| {
            let cli = Cli::try_parse_from(["loadgen", "charts"].iter().chain(extra))
                .expect("valid command line");
            let Command::Charts(args) = cli.command else {
                panic!("expected the charts subcommand");
            };
            args.dir
        };
        assert_eq!(parse(&[]), PathBuf::from("bench/charts"));
        assert_eq!(parse(&["--dir", "/tmp/c"]), PathBuf::from("/tmp/c"));
        let cli = Cli::try_parse_from(["loadgen", "bench", "--charts", "bench/charts"])
            .expect("valid command line");
        let Command::Bench(args) = cli.command else {
            panic!("expected the bench subcommand");
        };
        assert_eq!(args.charts, Some(PathBuf::from("bench/charts")));
    }

    #[test]
    fn suites_name_their_services_and_sections() {
        assert_eq!(Suite::All.services(), Service::ALL.to_vec());
        assert_eq!(Suite::Notes.services(), [Service::Notes]);
        assert_eq!(Suite::All.section(), "all");
        assert_eq!(Suite::Messages.section(), "messages");
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
        assert_eq!(hello.service, Suite::Hello);
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
        assert_eq!(messages.service, Suite::Messages);
        assert_eq!(messages.load.duration, Duration::from_secs(5));
        assert_eq!(messages.load.warmup, Duration::from_secs(1));
        assert_eq!(messages.write, Some(PathBuf::from("BENCHMARKS.md")));
        assert_eq!(parse(&["--service", "all"]).service, Suite::All);
        assert_eq!(parse(&["--service", "notes"]).service, Suite::Notes);
        assert!(Cli::try_parse_from(["loadgen", "bench", "--service", "chat"]).is_err());
    }
}
