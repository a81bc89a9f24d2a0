//! The idle scenario: many joined connections that only listen. The client side runs in worker
//! processes (`chatload idle-worker`, this same executable), because each process has at most
//! 20,000 file descriptors and needs one per connection. The parent measures the servers' RSS
//! before and after, then asks every worker how many connections are still open.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::{Semaphore, watch};

use crate::chat::client;
use crate::chat::servers::Probe;

/// Connections a worker opens at once.
const CONNECT_CONCURRENCY: usize = 128;

/// One idle run's parameters.
#[derive(Debug, Clone)]
pub struct IdleSpec {
    pub urls: Vec<String>,
    pub connections: u64,
    /// Worker processes sharing the connections.
    pub processes: u64,
    /// Members per room; rooms fill one after the other.
    pub room_size: u64,
    /// How long the connections are held after the RSS reading, before checking them.
    pub hold: Duration,
}

/// What one idle run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleResult {
    pub requested: u64,
    pub opened: u64,
    pub failed: u64,
    /// Still open after the hold.
    pub still_open: u64,
    pub rss_before: u64,
    pub rss_after: u64,
}

impl IdleResult {
    pub fn bytes_per_connection(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.opened.max(1) as f64
    }
}

/// The connections of worker `worker` of `processes`: `[first, first + count)`.
pub fn share(connections: u64, processes: u64, worker: u64) -> (u64, u64) {
    let base = connections / processes;
    let extra = connections % processes;
    let first = worker * base + worker.min(extra);
    (first, base + u64::from(worker < extra))
}

/// Runs the scenario once against servers whose RSS `probe` reads.
pub async fn run(spec: &IdleSpec, probe: &Probe, tag: &str) -> anyhow::Result<IdleResult> {
    let me = std::env::current_exe().context("cannot find this executable")?;
    let rss_before = probe.rss_bytes().unwrap_or(0);
    let mut workers = Vec::new();
    for worker in 0..spec.processes.max(1) {
        let (first, count) = share(spec.connections, spec.processes.max(1), worker);
        let mut child = Command::new(&me)
            .args([
                "idle-worker",
                "--urls",
                &spec.urls.join(","),
                "--first",
                &first.to_string(),
                "--count",
                &count.to_string(),
                "--room-size",
                &spec.room_size.to_string(),
                "--tag",
                tag,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start an idle worker")?;
        let stdin = child.stdin.take().context("stdin is piped")?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        workers.push((child, stdin, BufReader::new(stdout).lines()));
    }
    let (mut opened, mut failed) = (0, 0);
    for (_, _, lines) in &mut workers {
        let line = lines
            .next_line()
            .await?
            .context("a worker ended before READY")?;
        let (a, b) = parse_pair(&line, "READY")?;
        opened += a;
        failed += b;
    }
    // Let presence frames drain and allocations settle before reading RSS.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = probe.rss_bytes().unwrap_or(0);
    tokio::time::sleep(spec.hold).await;
    let mut still_open = 0;
    for (_, stdin, lines) in &mut workers {
        stdin.write_all(b"check\n").await?;
        stdin.flush().await?;
        let line = lines
            .next_line()
            .await?
            .context("a worker ended before OPEN")?;
        still_open += parse_pair(&line, "OPEN")?.0;
    }
    for (mut child, stdin, _) in workers {
        drop(stdin);
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        let _ = child.start_kill();
    }
    Ok(IdleResult {
        requested: spec.connections,
        opened,
        failed,
        still_open,
        rss_before,
        rss_after,
    })
}

/// `WORD a b` (b optional, 0).
fn parse_pair(line: &str, word: &str) -> anyhow::Result<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next() != Some(word) {
        bail!("expected `{word} …` from a worker, got {line:?}");
    }
    let a = fields.next().context("missing count")?.parse()?;
    let b = fields.next().map_or(Ok(0), str::parse)?;
    Ok((a, b))
}

/// The worker: opens connections `[first, first + count)`, prints `READY opened failed`, then
/// answers each `check` line on stdin with `OPEN n`, and exits when stdin closes.
pub async fn worker(
    urls: Vec<String>,
    first: u64,
    count: u64,
    room_size: u64,
    tag: String,
) -> anyhow::Result<()> {
    if urls.is_empty() {
        bail!("no URL");
    }
    let open = Arc::new(AtomicU64::new(0));
    let connecting = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut joins = Vec::with_capacity(count as usize);
    for index in first..first + count {
        let url = urls[index as usize % urls.len()].clone();
        let room = format!("{tag}-{}", index / room_size.max(1));
        let name = format!("i{index}");
        let (open, connecting, mut stop) = (open.clone(), connecting.clone(), stop_rx.clone());
        joins.push(tokio::spawn(async move {
            let joined = {
                let _permit = connecting.acquire().await;
                client::connect_and_join(&url, &room, &name, true).await
            };
            let (mut socket, _) = match joined {
                Ok(joined) => joined,
                Err(error) => {
                    eprintln!("{name}: {error:#}");
                    return false;
                }
            };
            open.fetch_add(1, Ordering::Relaxed);
            // Read (and so answer pings) until told to stop or the server closes.
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    frame = socket.next() => if !matches!(frame, Some(Ok(_))) {
                        open.fetch_sub(1, Ordering::Relaxed);
                        break;
                    },
                }
            }
            true
        }));
    }
    // Every connection attempt ends (opened or failed) before READY.
    let mut opened = 0;
    let mut failed = 0;
    while opened + failed < count {
        tokio::time::sleep(Duration::from_millis(100)).await;
        opened = open.load(Ordering::Relaxed);
        failed = joins.iter().filter(|join| join.is_finished()).count() as u64;
    }
    println!("READY {opened} {failed}");
    // tokio's stdin needs a feature loadgen does not enable; a blocking thread reads it.
    let (line_tx, mut line_rx) = tokio::sync::mpsc::channel::<String>(4);
    tokio::task::spawn_blocking(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if line_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = line_rx.recv().await {
        if line.trim() == "check" {
            println!("OPEN {}", open.load(Ordering::Relaxed));
        }
    }
    let _ = stop_tx.send(true);
    for join in joins {
        let _ = join.await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_connection_once() {
        assert_eq!(share(10, 3, 0), (0, 4));
        assert_eq!(share(10, 3, 1), (4, 3));
        assert_eq!(share(10, 3, 2), (7, 3));
        assert_eq!(share(19_000, 2, 1), (9_500, 9_500));
    }

    #[test]
    fn worker_lines_parse() {
        assert_eq!(parse_pair("READY 10 2", "READY").expect("pair"), (10, 2));
        assert_eq!(parse_pair("OPEN 7", "OPEN").expect("pair"), (7, 0));
        assert!(parse_pair("OPEN 7", "READY").is_err());
    }
}
