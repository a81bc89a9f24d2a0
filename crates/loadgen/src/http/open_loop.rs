//! The open loop the soak uses: requests fall due at a fixed rate whatever the answers, and
//! latency counts from when each was due, so a server that falls behind shows in latency
//! instead of slowing the offered load.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// The shape of an open-loop run.
#[derive(Debug, Clone, Copy)]
pub struct RateLoad {
    /// Connections, each with at most one request in flight: the most requests outstanding.
    pub connections: usize,
    /// Requests offered per second.
    pub rate: f64,
    /// How long requests fall due.
    pub duration: Duration,
}

/// How long after the end requests that fell due but were not sent yet may still go out; the
/// rest count as `unsent` errors (the server could not keep up with the rate).
const UNSENT_GRACE: Duration = Duration::from_secs(1);

/// Sends the scenario's fixtures, opens the connections, then offers `load.rate` requests per
/// second for `load.duration`: request `k` falls due at `start + k / rate` and goes out on the
/// first free connection. Its latency counts from when it fell due, not from when it left, so a
/// server that falls behind shows in latency instead of slowing the offered load. A response
/// counts as a success when `accept(status)`.
///
/// `each_second(elapsed)` is called at the start and then every second until the end, so the
/// caller can sample the server (its memory). The CPU time of `meters` over the run goes into
/// the summary.
pub async fn run_at_rate(
    endpoint: &Endpoint,
    scenario: &dyn HttpScenario,
    load: RateLoad,
    meters: &[CpuMeter],
    accept: fn(u16) -> bool,
    each_second: &mut dyn FnMut(Duration),
) -> anyhow::Result<Summary> {
    if load.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if !(load.rate.is_finite() && load.rate > 0.0) {
        bail!("the rate must be a positive number of requests per second");
    }
    send_fixtures(endpoint, scenario.fixtures(), load.connections)
        .await
        .context("fixtures failed")?;
    let due_slots = slots_due(load.rate, load.duration);
    let barrier = Arc::new(Barrier::new(load.connections + 1));
    let (schedule_tx, schedule_rx) = watch::channel(None::<RateSchedule>);
    let next_slot = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for connection_idx in 0..load.connections {
        workers.spawn(rate_worker(
            endpoint.clone(),
            scenario.stream(connection_idx),
            barrier.clone(),
            schedule_rx.clone(),
            next_slot.clone(),
            accept,
        ));
    }
    barrier.wait().await;
    let start = Instant::now() + Duration::from_millis(10);
    let schedule = RateSchedule {
        start,
        rate: load.rate,
        slots: due_slots,
        send_until: start + load.duration + UNSENT_GRACE,
    };
    schedule_tx.send_replace(Some(schedule));
    tokio::time::sleep_until(start.into()).await;
    let cpu_from: Vec<_> = meters.iter().map(CpuMeter::read).collect();
    each_second(Duration::ZERO);
    let mut second = 1;
    while Duration::from_secs(second) <= load.duration {
        tokio::time::sleep_until((start + Duration::from_secs(second)).into()).await;
        each_second(Duration::from_secs(second));
        second += 1;
    }
    tokio::time::sleep_until((start + load.duration).into()).await;
    let cpu_until: Vec<_> = meters.iter().map(CpuMeter::read).collect();

    let mut total = Recording::default();
    while let Some(joined) = workers.join_next().await {
        let recording = joined.context("a load worker panicked")??;
        total.merge(&recording);
    }
    let answered = total.requests();
    for _ in answered..due_slots {
        total.failure("unsent".to_owned());
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

/// Requests due in `duration` at `rate` per second: slots `k` with `k / rate < duration`.
pub fn slots_due(rate: f64, duration: Duration) -> u64 {
    (duration.as_secs_f64() * rate).ceil() as u64
}

/// When each request of an open-loop run falls due.
#[derive(Debug, Clone, Copy)]
struct RateSchedule {
    start: Instant,
    rate: f64,
    /// Requests due in the run.
    slots: u64,
    /// No request leaves after this.
    send_until: Instant,
}

impl RateSchedule {
    fn due(&self, slot: u64) -> Instant {
        self.start + Duration::from_secs_f64(slot as f64 / self.rate)
    }
}

async fn rate_worker(
    endpoint: Endpoint,
    mut stream: Box<dyn RequestStream>,
    barrier: Arc<Barrier>,
    mut schedule_rx: watch::Receiver<Option<RateSchedule>>,
    next_slot: Arc<AtomicU64>,
    accept: fn(u16) -> bool,
) -> anyhow::Result<Recording> {
    let mut connection = Some(connect_then_wait(&endpoint, &barrier).await?);
    let schedule = schedule_rx
        .wait_for(Option::is_some)
        .await
        .context("the run ended before it started")?
        .context("the schedule is set before it is announced")?;

    let mut recording = Recording::default();
    loop {
        let slot = next_slot.fetch_add(1, Ordering::Relaxed);
        if slot >= schedule.slots {
            break;
        }
        let due = schedule.due(slot);
        tokio::time::sleep_until(due.into()).await;
        if Instant::now() >= schedule.send_until {
            // Too late: the run counts this slot and the ones after it as unsent.
            break;
        }
        let request = endpoint.request(&stream.next_request())?;
        let Some(open) = reconnected(&endpoint, &mut connection).await else {
            recording.failure("connect".to_owned());
            tokio::time::sleep(RECONNECT_PAUSE).await;
            continue;
        };
        match send_timed(open, request).await {
            Ok(status) => recording.response_if(accept(status), status, due.elapsed()),
            Err(kind) => {
                recording.failure(kind);
                connection = None;
            }
        }
    }
    Ok(recording)
}
