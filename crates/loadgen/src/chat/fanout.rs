//! The fan-out scenario: `rooms` rooms of `members` members each, `publishers` of them per room
//! publishing on a fixed schedule; every member reads continuously and checks what it gets.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::cpu::CpuMeter;
use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::chat::accounting::{Counts, Histograms, SeqOutcome, SeqTracker, Window, record_all};
use crate::chat::client::{self, Incoming, Socket};
use crate::chat::clock;
use crate::chat::payload::{self, Stamp};
use crate::chat::schedule::{Metronome, Schedule, SystemClock, Ticker};
use crate::chat::servers::Probe;

/// Connections opened at once while setting up.
const CONNECT_CONCURRENCY: usize = 64;
/// Latencies a receiver buffers before adding them to the shared histogram.
const FLUSH_EVERY: usize = 1024;
/// Most due messages a publisher writes before one flush.
const SEND_BATCH: usize = 256;

/// One fan-out run's parameters.
#[derive(Debug, Clone)]
pub struct FanoutSpec {
    /// Server URLs (`ws://host:port/ws`); members go round-robin over them.
    pub urls: Vec<String>,
    pub rooms: u32,
    pub members: u32,
    /// Publishers per room (they are members too).
    pub publishers: u32,
    /// Messages per second over all rooms.
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    /// How long receivers keep reading after the window for messages still in flight.
    pub drain: Duration,
    pub message_bytes: usize,
}

impl FanoutSpec {
    /// Deliveries per second offered: every message reaches every member of its room.
    pub fn offered(&self) -> f64 {
        self.rate * f64::from(self.members)
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct FanoutResult {
    pub counts: Counts,
    pub histograms: Histograms,
    pub window_secs: f64,
    pub members: u32,
    /// Server CPU time over the window, when the server PIDs are known.
    pub server_cpu: Option<Duration>,
    /// Server RSS at the end of the window, bytes.
    pub server_rss: Option<u64>,
    pub loadgen_cpu: Option<Duration>,
}

impl FanoutResult {
    /// Deliveries that arrived in the window, per second.
    pub fn deliveries_per_sec(&self) -> f64 {
        self.counts.arrived_in_window as f64 / self.window_secs
    }

    /// Deliveries the window's messages should have made and did not (after the drain).
    pub fn missing(&self) -> u64 {
        (self.counts.window_sent * u64::from(self.members))
            .saturating_sub(self.counts.window_deliveries)
    }

    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.histograms.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn send_lag_p99_ms(&self) -> f64 {
        self.histograms.send_lag_us.value_at_quantile(0.99) as f64 / 1000.0
    }

    pub fn server_cpu_us_per_delivery(&self) -> Option<f64> {
        let cpu = self.server_cpu?;
        let deliveries = self.counts.arrived_in_window.max(1) as f64;
        Some(cpu.as_secs_f64() * 1e6 / deliveries)
    }
}

/// Everything the members share.
struct Shared {
    /// Set once every member joined; publishers and receivers read it.
    plan: OnceLock<Plan>,
    histograms: Mutex<Histograms>,
    /// Publisher `g` waits on `tickers[g]` for its next message to fall due.
    tickers: Arc<[Ticker]>,
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    start_ns: u64,
    window: Window,
}

/// Runs the scenario once; `probe` reads the servers' CPU and RSS.
pub async fn run(spec: &FanoutSpec, probe: &Probe, tag: &str) -> anyhow::Result<FanoutResult> {
    if spec.urls.is_empty() || spec.members == 0 || spec.rooms == 0 || spec.rate <= 0.0 {
        bail!("fanout needs a URL, members, rooms and a positive rate");
    }
    if spec.publishers == 0 || spec.publishers > spec.members {
        bail!("publishers must be between 1 and members");
    }
    let total_publishers = spec.rooms * spec.publishers;
    let mut metronome = Metronome::new(total_publishers, Arc::new(SystemClock));
    let shared = Arc::new(Shared {
        plan: OnceLock::new(),
        histograms: Mutex::new(Histograms::default()),
        tickers: metronome.tickers(),
    });
    let (ready_tx, mut ready_rx) = mpsc::channel::<anyhow::Result<()>>(1024);
    let (start_tx, start_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let connecting = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let total = spec.rooms * spec.members;
    let mut tasks = Vec::with_capacity(total as usize);
    for index in 0..total {
        let room_index = index / spec.members;
        let member = index % spec.members;
        let url = spec.urls[index as usize % spec.urls.len()].clone();
        let member_spec = MemberSpec {
            url,
            room: format!("{tag}-{room_index}"),
            name: format!("m{member}"),
            publisher: (member < spec.publishers).then_some(room_index * spec.publishers + member),
            total_publishers,
            rate: spec.rate,
            message_bytes: spec.message_bytes,
        };
        tasks.push(tokio::spawn(member_task(
            member_spec,
            shared.clone(),
            connecting.clone(),
            ready_tx.clone(),
            start_rx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(ready_tx);
    for joined in 0..total {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(error)) => {
                return Err(error.context(format!("member {joined} of {total} could not join")));
            }
            None => bail!("members ended before joining"),
        }
    }
    // Let the burst of presence frames from the joins settle.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let start_ns = clock::now_ns() + 100_000_000;
    let from_ns = start_ns + spec.warmup.as_nanos() as u64;
    let window = Window {
        from_ns,
        to_ns: from_ns + spec.duration.as_nanos() as u64,
    };
    let _ = shared.plan.set(Plan { start_ns, window });
    metronome
        .start(start_ns, window.to_ns, spec.rate)
        .context("cannot start the metronome thread")?;
    let _ = start_tx.send(true);

    let me = CpuMeter::this_process();
    tokio::time::sleep_until(clock::instant_at(window.from_ns)).await;
    let (server0, loadgen0) = (probe.cpu(), me.read());
    tokio::time::sleep_until(clock::instant_at(window.to_ns)).await;
    let (server1, loadgen1, server_rss) = (probe.cpu(), me.read(), probe.rss_bytes());
    tokio::time::sleep(spec.drain).await;
    let _ = stop_tx.send(true);

    let mut counts = Counts::default();
    for task in tasks {
        counts.add(&task.await.context("a member task panicked")?);
    }
    let histograms = shared
        .histograms
        .lock()
        .map_err(|_| anyhow::anyhow!("a member panicked while recording"))?
        .clone();
    let diff = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));
    Ok(FanoutResult {
        counts,
        histograms,
        window_secs: spec.duration.as_secs_f64(),
        members: spec.members,
        server_cpu: diff(server0, server1),
        server_rss,
        loadgen_cpu: diff(loadgen0, loadgen1),
    })
}

struct MemberSpec {
    url: String,
    room: String,
    name: String,
    /// The global publisher index, for members that publish.
    publisher: Option<u32>,
    total_publishers: u32,
    rate: f64,
    message_bytes: usize,
}

/// Joins, reports ready, then reads (and publishes, for a publisher) until told to stop.
async fn member_task(
    spec: MemberSpec,
    shared: Arc<Shared>,
    connecting: Arc<Semaphore>,
    ready: mpsc::Sender<anyhow::Result<()>>,
    start: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
) -> Counts {
    let joined = async {
        let _permit = connecting.acquire().await.context("setup was abandoned")?;
        client::connect_and_join(&spec.url, &spec.room, &spec.name, false).await
    }
    .await;
    let (socket, last_seq) = match joined {
        Ok(joined) => joined,
        Err(error) => {
            let _ = ready.send(Err(error)).await;
            return Counts::default();
        }
    };
    let _ = ready.send(Ok(())).await;
    drop(ready);
    let mut tracker = SeqTracker::default();
    tracker.joined(last_seq);
    let (sink, stream) = socket.split();
    let mut counts = match spec.publisher {
        Some(index) => {
            let schedule_for = |plan: &Plan| Schedule {
                start_ns: plan.start_ns,
                end_ns: plan.window.to_ns,
                rate: spec.rate,
                publishers: spec.total_publishers,
                index,
            };
            let (received, sent) = tokio::join!(
                receive(stream, &mut tracker, &shared, stop),
                publish(
                    sink,
                    schedule_for,
                    index,
                    spec.message_bytes,
                    &shared,
                    start
                ),
            );
            let mut counts = received;
            counts.add(&sent);
            counts
        }
        None => {
            // Keep the write half alive: dropping it does not close the socket, but keeping it
            // makes the intent plain.
            let _sink = sink;
            receive(stream, &mut tracker, &shared, stop).await
        }
    };
    counts.add_tracker(&tracker);
    counts
}

/// Reads every frame until `stop`, checking sequence numbers and recording latencies.
async fn receive(
    mut stream: futures::stream::SplitStream<Socket>,
    tracker: &mut SeqTracker,
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
) -> Counts {
    let mut counts = Counts::default();
    let mut pending: Vec<u64> = Vec::new();
    loop {
        let frame = tokio::select! {
            biased;
            _ = stop.changed() => break,
            frame = stream.next() => frame,
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => {
                counts.closed += 1;
                break;
            }
        };
        match client::classify(text.as_str()) {
            Incoming::Message { seq, text } => {
                if tracker.observe(seq) == SeqOutcome::History {
                    continue;
                }
                let (Some(stamp), Some(plan)) = (payload::parse(text), shared.plan.get()) else {
                    counts.errors += 1;
                    continue;
                };
                if let Some(latency) =
                    counts.delivery(&plan.window, stamp.scheduled_ns, clock::now_ns())
                {
                    pending.push(latency);
                    if pending.len() >= FLUSH_EVERY {
                        flush(shared, &mut pending, |histograms| {
                            &mut histograms.latency_us
                        });
                    }
                }
            }
            Incoming::Error(_) | Incoming::Other => counts.errors += 1,
            Incoming::Joined { .. } | Incoming::Presence => {}
        }
    }
    flush(shared, &mut pending, |histograms| {
        &mut histograms.latency_us
    });
    counts
}

/// Sends on schedule, whatever the replies: at each wake-up every message already due goes out
/// (stamped with its due time, not the time it actually left), then the publisher waits for the
/// metronome's tick of its next one.
async fn publish(
    mut sink: futures::stream::SplitSink<Socket, Message>,
    schedule_for: impl Fn(&Plan) -> Schedule,
    publisher: u32,
    message_bytes: usize,
    shared: &Shared,
    mut start: watch::Receiver<bool>,
) -> Counts {
    let mut counts = Counts::default();
    if start.wait_for(|started| *started).await.is_err() {
        return counts;
    }
    let Some(plan) = shared.plan.get().copied() else {
        return counts;
    };
    let schedule = schedule_for(&plan);
    let mut lags: Vec<u64> = Vec::new();
    let mut k = 0u64;
    let ticker = &shared.tickers[publisher as usize];
    'schedule: while let Some(due) = schedule.due_ns(k) {
        // At once when already due (a batch cut at SEND_BATCH leaves due messages behind).
        ticker.until(due).await;
        let mut batch = 0;
        while let Some(due) = schedule.due_ns(k) {
            let now = clock::now_ns();
            if due > now || batch == SEND_BATCH {
                break;
            }
            let text = payload::encode(
                Stamp {
                    publisher,
                    n: k,
                    scheduled_ns: due,
                },
                message_bytes,
            );
            if sink
                .feed(Message::text(client::send_frame(&text)))
                .await
                .is_err()
            {
                counts.closed += 1;
                break 'schedule;
            }
            if let Some(lag) = counts.sent(&plan.window, due, now) {
                lags.push(lag);
            }
            k += 1;
            batch += 1;
        }
        if sink.flush().await.is_err() {
            counts.closed += 1;
            break;
        }
    }
    flush(shared, &mut lags, |histograms| &mut histograms.send_lag_us);
    counts
}

fn flush(
    shared: &Shared,
    values: &mut Vec<u64>,
    which: impl Fn(&mut Histograms) -> &mut hdrhistogram::Histogram<u64>,
) {
    if let Ok(mut histograms) = shared.histograms.lock() {
        record_all(which(&mut histograms), values);
    }
}
