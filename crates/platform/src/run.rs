//! `run(service)`: the command line every service binary shares.
//!
//! `serve` (the default), `check-config`, `migrate`, `cert`, `slo rules|dashboard|openslo`; `--config FILE`,
//! `--version`, `--help`.
//! Exit codes: 0 on success and after a clean drain, 2 for an invalid configuration, 1 for any
//! other start-up failure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{self, Loaded, Source};
use crate::server::{self, REVISION};
use crate::service::{Service, StartError};

#[derive(Debug, Parser)]
struct Cli {
    /// TOML configuration file; environment variables `<SVC>__SECTION__KEY` override it.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Load and validate the configuration, print the effective values with secrets redacted.
    CheckConfig,
    /// Apply schema migrations to the configured backend, then exit.
    Migrate,
    /// Print the API's TLS certificate (PEM) to hand to clients, generating the self-signed one
    /// when `tls.cert`/`tls.key` are unset.
    Cert {
        /// Print the certificate file's path instead of its contents.
        #[arg(long)]
        path: bool,
    },
    /// Print what is generated from the service's SLOs.
    Slo {
        #[command(subcommand)]
        artifact: SloArtifact,
        /// The absolute URL of the page holding the runbooks; alerts link to
        /// `<URL>#runbook-<service>`. Default: the README of the workspace's repository.
        #[arg(long, global = true, value_name = "URL")]
        runbooks: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, Subcommand)]
enum SloArtifact {
    /// Prometheus recording and multi-window burn-rate alert rules (YAML).
    Rules,
    /// The Grafana dashboard (JSON).
    Dashboard,
    /// OpenSLO v1 documents (YAML).
    Openslo,
    /// The rules as a prometheus-operator `PrometheusRule` (Kubernetes YAML).
    PrometheusRule,
}

/// Parses the command line, loads the configuration and runs the chosen command.
///
/// A service's `main` is one line:
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     platform::run(platform::Service::new("demo", "0.1.0", 8089, |_: platform::Context| async {
///         Ok(axum::Router::new())
///     }))
/// }
/// ```
pub fn run<S>(service: Service<S>) -> ExitCode
where
    S: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
{
    let version: &'static str =
        Box::leak(format!("{} (revision {REVISION})", service.version()).into_boxed_str());
    let matches = Cli::command()
        .name(service.name())
        .bin_name(service.name())
        .version(version)
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    if let Some(Command::Slo { artifact, runbooks }) = cli.command {
        // Generated from the declaration alone: no configuration, no backend.
        let (name, slos) = (service.name(), service.slos());
        let runbooks = runbooks
            .as_deref()
            .unwrap_or(crate::slo::rules::DEFAULT_RUNBOOKS);
        let text = match artifact {
            SloArtifact::Rules => crate::slo::rules::render_with_runbooks(name, slos, runbooks),
            SloArtifact::Dashboard => service.dashboard(),
            SloArtifact::Openslo => crate::slo::openslo::render(name, slos),
            SloArtifact::PrometheusRule => {
                crate::slo::rules::render_prometheus_rule_with_runbooks(name, slos, runbooks)
            }
        };
        print!("{text}");
        return ExitCode::SUCCESS;
    }
    let source = Source::from_process(cli.config);
    let loaded = match config::load::<S>(service.name(), &service.default_settings(), &source) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("{}: {error}", service.name());
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => match config::render(&loaded) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{}: {error}", service.name());
                ExitCode::from(2)
            }
        },
        Command::Cert { path } => cert(service.name(), &loaded.platform.tls, path),
        command => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!(
                        "{}: cannot start the async runtime: {error}",
                        service.name()
                    );
                    return ExitCode::FAILURE;
                }
            };
            let result = runtime.block_on(async {
                match command {
                    Command::Migrate => migrate(&service, loaded).await,
                    _ => serve(&service, loaded).await,
                }
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("{}: {error}", service.name());
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn cert(name: &str, settings: &config::TlsSettings, path_only: bool) -> ExitCode {
    if !settings.enabled {
        eprintln!("{name}: TLS is off (tls.enabled = false); there is no certificate to hand out");
        return ExitCode::FAILURE;
    }
    let paths = match crate::tls::certificate_paths(name, settings) {
        Ok(paths) => paths,
        Err(error) => {
            eprintln!("{name}: {error}");
            return ExitCode::FAILURE;
        }
    };
    if path_only {
        println!("{}", paths.cert.display());
        return ExitCode::SUCCESS;
    }
    match std::fs::read_to_string(&paths.cert) {
        Ok(pem) => {
            print!("{pem}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{name}: {}: {error}", paths.cert.display());
            ExitCode::FAILURE
        }
    }
}

async fn migrate<S>(service: &Service<S>, loaded: Loaded<S>) -> Result<(), StartError>
where
    S: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
{
    let _telemetry = crate::telemetry::init(
        service.name(),
        service.version(),
        &loaded.platform.telemetry,
    )?;
    let backends = server::migrate(service, loaded).await?;
    tracing::info!(?backends, "Migrations applied.");
    Ok(())
}

async fn serve<S>(service: &Service<S>, loaded: Loaded<S>) -> Result<(), StartError>
where
    S: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
{
    let telemetry = crate::telemetry::init(
        service.name(),
        service.version(),
        &loaded.platform.telemetry,
    )?;
    let shutdown = loaded.platform.shutdown.clone();
    let signals = crate::shutdown::Signals::install()
        .map_err(|error| StartError::Service(format!("cannot install signal handlers: {error}")))?;
    let running = server::start(service, loaded).await?;
    tracing::info!(
        service = service.name(),
        version = service.version(),
        revision = REVISION,
        api = %running.api_addr(),
        admin = %running.admin_addr(),
        backends = ?running.info().backends,
        "Serving."
    );
    signals.recv().await;
    running.shutdown(shutdown.drain_delay, shutdown.grace).await;
    telemetry.flush();
    tracing::info!("Stopped.");
    Ok(())
}
