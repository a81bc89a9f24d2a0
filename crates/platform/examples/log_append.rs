//! Log appends per second on a fresh SQLite file: `APPENDERS` tasks append one entry at a time,
//! each to a stream of its own, until `APPENDS` appends are acknowledged in all.
//!
//! ```sh
//! cargo run --release -p platform --example log_append -- [APPENDERS] [APPENDS] [BYTES]
//! ```
//!
//! Defaults: 64 appenders, 20,000 appends, 64-byte entries, through `open_log` (so with the
//! instrumented wrapper and its timeout, as chat runs it). Prints one line: appends/s and the
//! latency percentiles of one append.

use std::time::{Duration, Instant};

use platform::config::{SecretUrl, StorageSettings};
use platform::storage::log::open_log;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut next = |default: usize| -> Result<usize, std::num::ParseIntError> {
        args.next().map_or(Ok(default), |arg| arg.parse())
    };
    let (appenders, appends, bytes) = (next(64)?.max(1), next(20_000)?, next(64)?);

    let dir = std::env::temp_dir().join(format!("log-append-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let settings = StorageSettings {
        url: SecretUrl::new(format!("sqlite://{}", dir.join("bench.db").display())),
        ..StorageSettings::default()
    };
    let log = open_log(&settings, "bench", 100, true).await?;

    let started = Instant::now();
    let tasks: Vec<_> = (0..appenders)
        .map(|appender| {
            let log = log.clone();
            // The first `appends % appenders` appenders take one more, so the total is exact.
            let count = appends / appenders + usize::from(appender < appends % appenders);
            tokio::spawn(async move {
                let stream = format!("room-{appender}");
                let entry = vec![b'x'; bytes];
                let mut latencies = Vec::with_capacity(count);
                for _ in 0..count {
                    let append = Instant::now();
                    log.append(&stream, std::slice::from_ref(&entry)).await?;
                    latencies.push(append.elapsed());
                }
                Ok::<_, platform::storage::StorageError>(latencies)
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::with_capacity(appends);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        latencies
            .get(index)
            .map_or(0.0, |latency| latency.as_secs_f64() * 1e3)
    };
    println!(
        "{appends} appends by {appenders} appenders ({bytes} B each) in {:.2} s: {:.0} appends/s, \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
        percentile(1.0),
    );
    drop(log);
    // The log's connections close in the background; the directory goes with the process anyway.
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
