//! The closed loop the benchmark uses: `connections` keep-alive connections, each with exactly
//! one request in flight, sending the next as soon as the previous response body has been read.
//!
//! A run has three phases: fixtures (the scenario's setup requests, which must all succeed),
//! warm-up (load, not recorded), and the measured window. A response counts when it completes
//! inside the window; its latency is from writing the request to reading the whole body.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::{Barrier, watch};
use tokio::task::JoinSet;

use super::client::{
    Endpoint, RECONNECT_PAUSE, connect_then_wait, reconnected, send_fixtures, send_timed,
};
use crate::cpu::CpuMeter;
use crate::scenario::{HttpScenario, RequestStream};
use crate::summary::{Recording, Summary};

/// The shape of a run.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Concurrent connections, one request in flight on each.
    pub connections: usize,
    /// Load before the measured window, not recorded.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// Sends the scenario's fixtures, then loads `endpoint` for `load.warmup + load.duration`.
/// The CPU time each of `meters` used in the measured window goes into the summary.
pub async fn run(
    endpoint: &Endpoint,
    scenario: &dyn HttpScenario,
    load: Load,
    meters: &[CpuMeter],
) -> anyhow::Result<Summary> {
    if load.connections == 0 {
        bail!("--connections must be at least 1");
    }
    send_fixtures(endpoint, scenario.fixtures(), load.connections)
        .await
        .context("fixtures failed")?;

    // Every connection is open before the clock starts, so connecting is not measured.
    let barrier = Arc::new(Barrier::new(load.connections + 1));
    let (timeline_tx, timeline_rx) = watch::channel(None::<Timeline>);
    let mut workers = JoinSet::new();
    for connection_idx in 0..load.connections {
        workers.spawn(worker(
            endpoint.clone(),
            scenario.stream(connection_idx),
            barrier.clone(),
            timeline_rx.clone(),
        ));
    }
    barrier.wait().await;
    let measure_from = Instant::now() + load.warmup;
    let measure_until = measure_from + load.duration;
    timeline_tx.send_replace(Some(Timeline {
        measure_from,
        measure_until,
    }));
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_from: Vec<_> = meters.iter().map(CpuMeter::read).collect();
    tokio::time::sleep_until(measure_until.into()).await;
    let cpu_until: Vec<_> = meters.iter().map(CpuMeter::read).collect();

    let mut total = Recording::default();
    while let Some(joined) = workers.join_next().await {
        let recording = joined.context("a load worker panicked")??;
        total.merge(&recording);
    }
    let mut summary = Summary::new(&total, load.duration);
    for ((meter, from), until) in meters.iter().zip(cpu_from).zip(cpu_until) {
        if let (Some(from), Some(until)) = (from, until) {
            let used = until.saturating_sub(from).as_secs_f64();
            summary.cpu_seconds.insert(meter.name.clone(), used);
        }
    }
    Ok(summary)
}

/// When the measured window opens and closes; the load stops when it closes.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    measure_from: Instant,
    measure_until: Instant,
}

impl Timeline {
    fn measures(&self, completed: Instant) -> bool {
        completed >= self.measure_from && completed < self.measure_until
    }
}

async fn worker(
    endpoint: Endpoint,
    mut stream: Box<dyn RequestStream>,
    barrier: Arc<Barrier>,
    mut timeline_rx: watch::Receiver<Option<Timeline>>,
) -> anyhow::Result<Recording> {
    let mut connection = Some(connect_then_wait(&endpoint, &barrier).await?);
    let timeline = timeline_rx
        .wait_for(Option::is_some)
        .await
        .context("the run ended before it started")?
        .context("the timeline is set before it is announced")?;

    let mut recording = Recording::default();
    while Instant::now() < timeline.measure_until {
        let request = endpoint.request(&stream.next_request())?;
        let Some(open) = reconnected(&endpoint, &mut connection).await else {
            if timeline.measures(Instant::now()) {
                recording.failure("connect".to_owned());
            }
            tokio::time::sleep(RECONNECT_PAUSE).await;
            continue;
        };
        let started = Instant::now();
        let outcome = send_timed(open, request).await;
        let completed = Instant::now();
        if outcome.is_err() {
            connection = None;
        }
        if timeline.measures(completed) {
            match outcome {
                Ok(status) => recording.response(status, completed - started),
                Err(kind) => recording.failure(kind),
            }
        }
    }
    Ok(recording)
}
