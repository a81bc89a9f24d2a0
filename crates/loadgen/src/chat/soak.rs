//! `chatload soak`: one chat server (memory log and broker) under the fan-out scenario at a fixed
//! rate, by default for a minute, its RSS sampled every second; fails on any gap, duplicate,
//! missing delivery, closed connection or error frame, or on memory that keeps growing. The
//! verdict and the `bench:soak` row are `crate::soak`'s, as for the HTTP services.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::soak::{Sample, SoakReport};
use anyhow::bail;
use tokio::sync::watch;

use crate::chat::bench::{DRAIN, LADDER_DURATION, LADDER_P99_MS, LADDER_WARMUP, passes};
use crate::chat::fanout::{self, FanoutResult, FanoutSpec};
use crate::chat::servers::{self, Backend, Probe, Server};

/// Members of the soak's room, and how many of them publish.
const MEMBERS: u32 = 100;
const PUBLISHERS: u32 = 10;

/// What `soak` runs and how.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    /// Messages per second into the room.
    pub rate: Option<f64>,
    /// Or this fraction of the highest passing rate of `ladder`.
    pub peak_fraction: Option<f64>,
    pub ladder: Vec<f64>,
    pub duration: Duration,
    pub max_growth_kib_per_min: f64,
    pub message_bytes: usize,
    pub write: Option<PathBuf>,
    /// Keep the RSS samples as `DIR/soak-chat-….json` and draw them beside it.
    pub charts: Option<PathBuf>,
}

/// Runs the soak; returns whether it passed.
pub async fn run(options: &SoakOptions) -> anyhow::Result<bool> {
    let program = servers::chat_program()?;
    let server = Server::start(&program, Backend::Memory, "chat").await?;
    let probe = Probe::new(vec![server.pid]);
    let tag = format!("soak-{}", std::process::id());
    let base = FanoutSpec {
        urls: vec![server.url()],
        rooms: 1,
        members: MEMBERS,
        publishers: PUBLISHERS,
        rate: 1.0,
        warmup: Duration::from_secs(1),
        duration: options.duration,
        drain: DRAIN,
        message_bytes: options.message_bytes,
    };
    let (rate, offered_from) = match (options.rate, options.peak_fraction) {
        (Some(rate), _) => (rate, "--rate".to_owned()),
        (None, Some(fraction)) => {
            let peak = ladder_peak(&base, &probe, &options.ladder, &tag).await?;
            (
                fraction * peak,
                format!("{fraction} × max {peak:.0} msgs/s"),
            )
        }
        (None, None) => bail!("give --rate or --peak-fraction"),
    };
    let spec = FanoutSpec { rate, ..base };
    eprintln!(
        "Soaking chat (memory) at {rate:.0} msgs/s into a {MEMBERS}-member room for {:?}.",
        options.duration
    );

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let pid = server.pid;
    let sampler = tokio::spawn(async move {
        let started = Instant::now();
        let mut samples = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Some(rss_bytes) = crate::memory::rss_bytes(pid) {
                        samples.push(Sample { at_secs: started.elapsed().as_secs_f64(), rss_bytes });
                    }
                }
                _ = stop_rx.changed() => break,
            }
        }
        samples
    });
    let result = fanout::run(&spec, &probe, &format!("{tag}-soak")).await;
    let _ = stop_tx.send(true);
    let samples = sampler.await?;
    server.stop().await;
    let run = result?;

    let report = report(&spec, &run, samples, offered_from, options);
    println!("{}", report.summary());
    if let Some(path) = &options.write {
        crate::soak::write(path, &report)?;
        eprintln!("Updated the soak table of {}.", path.display());
    }
    if let Some(dir) = &options.charts {
        for path in crate::charts::soak::write(dir, &report)? {
            eprintln!("Drew {}.", path.display());
        }
    }
    Ok(report.failures().is_empty())
}

/// The highest rate of `ladder` that passes (one 1 s + 5 s run each, as `chatload bench`'s
/// maximum), stopping at the first that fails.
async fn ladder_peak(
    base: &FanoutSpec,
    probe: &Probe,
    ladder: &[f64],
    tag: &str,
) -> anyhow::Result<f64> {
    let mut best = None;
    for (step, &rate) in ladder.iter().enumerate() {
        let spec = FanoutSpec {
            rate,
            warmup: LADDER_WARMUP,
            duration: LADDER_DURATION,
            ..base.clone()
        };
        let run = fanout::run(&spec, probe, &format!("{tag}-ladder-{step}")).await?;
        let ok = passes(&run, spec.offered(), LADDER_P99_MS);
        eprintln!(
            "ladder {rate} msgs/s: {:.0} deliveries/s, p99 {:.1} ms, missing {}, {}",
            run.deliveries_per_sec(),
            run.latency_ms(0.99),
            run.missing(),
            if ok { "ok" } else { "FAIL" }
        );
        if !ok {
            break;
        }
        best = Some(rate);
    }
    match best {
        Some(rate) => Ok(rate),
        None => bail!("no rate of the ladder passed; give --rate"),
    }
}

fn report(
    spec: &FanoutSpec,
    run: &FanoutResult,
    samples: Vec<Sample>,
    offered_from: String,
    options: &SoakOptions,
) -> SoakReport {
    let counts = &run.counts;
    let error_kinds: std::collections::BTreeMap<String, u64> = [
        ("gaps", counts.gaps),
        ("duplicates", counts.duplicates),
        ("missing", run.missing()),
        ("closed", counts.closed),
        ("error frames", counts.errors),
    ]
    .into_iter()
    .filter(|&(_, count)| count > 0)
    .map(|(kind, count)| (kind.to_owned(), count))
    .collect();
    SoakReport {
        when: crate::soak::now_utc(),
        service: "chat".to_owned(),
        backend: "memory, TLS off".to_owned(),
        load: format!(
            "{} × {} members ({} publishers), {}-byte messages; open loop",
            spec.rooms, spec.members, spec.publishers, spec.message_bytes
        ),
        offered: format!(
            "{} msgs/s = {} deliveries/s ({offered_from})",
            crate::report::thousands(spec.rate),
            crate::report::thousands(spec.offered())
        ),
        achieved: format!(
            "{} deliveries/s",
            crate::report::thousands(run.deliveries_per_sec())
        ),
        errors: error_kinds.values().sum(),
        error_kinds,
        p50_ms: run.latency_ms(0.5),
        p99_ms: run.latency_ms(0.99),
        p999_ms: run.latency_ms(0.999),
        samples,
        duration: options.duration,
        max_growth_kib_per_min: options.max_growth_kib_per_min,
    }
}
