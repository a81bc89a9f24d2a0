//! chat servers run as child processes: started with the benchmark's configuration, ready when
//! they print their `Serving.` line, killed when dropped. Their PIDs give CPU time and RSS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::cpu::CpuMeter;
use crate::target::ready_address;
use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a server keeps history and fans out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One process, `memory:` log and broker.
    Memory,
    /// Log on Redis streams, broker NATS.
    RedisNats,
    /// Log and broker on Redis.
    Redis,
}

impl Backend {
    fn urls(self) -> (&'static str, &'static str) {
        match self {
            Backend::Memory => ("memory:", "memory:"),
            Backend::RedisNats => ("redis://127.0.0.1:6379", "nats://127.0.0.1:4222"),
            Backend::Redis => ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::RedisNats => "Redis log + NATS",
            Backend::Redis => "Redis log + Redis broker",
        }
    }
}

/// The environment of a benchmarked server: ephemeral ports, quiet logs (the ready line only),
/// rate limiting out of the way, no drain delay on shutdown.
pub fn environment(backend: Backend) -> Vec<(String, String)> {
    let (storage, broker) = backend.urls();
    [
        ("CHAT__SERVER__LISTEN", "127.0.0.1:0"),
        ("CHAT__ADMIN__LISTEN", "127.0.0.1:0"),
        ("CHAT__STORAGE__URL", storage),
        ("CHAT__BROKER__URL", broker),
        ("CHAT__TELEMETRY__LOG_FORMAT", "json"),
        ("CHAT__TELEMETRY__LOG_LEVEL", "warn,platform::run=info"),
        ("CHAT__CHAT__RATE_PER_SECOND", "1000000"),
        ("CHAT__CHAT__RATE_BURST", "1000000"),
        ("CHAT__SHUTDOWN__DRAIN_DELAY", "0s"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect()
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub pid: u32,
    child: Child,
}

impl Server {
    /// Starts `program serve` with `backend` and waits for its ready line.
    pub async fn start(program: &Path, backend: Backend, name: &str) -> anyhow::Result<Server> {
        let mut child = Command::new(program)
            .arg("serve")
            .envs(environment(backend))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = ready_address(&line) {
                    return Ok(addr);
                }
                eprintln!("[{name}] {line}");
            }
            bail!("{name} exited before it was ready")
        };
        let addr = tokio::time::timeout(READY_TIMEOUT, ready)
            .await
            .with_context(|| format!("{name} was not ready within {READY_TIMEOUT:?}"))??;
        let name = name.to_owned();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[{name}] {line}");
            }
        });
        Ok(Server { addr, pid, child })
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The chat binary next to this executable.
pub fn chat_program() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find this executable")?;
    let program = me.with_file_name("chat");
    if !program.exists() {
        bail!(
            "{} is missing: run `cargo build --release -p chat -p loadgen` first",
            program.display()
        );
    }
    Ok(program)
}

/// CPU time and RSS of a set of server processes.
#[derive(Debug, Clone)]
pub struct Probe {
    pids: Vec<u32>,
}

impl Probe {
    pub fn new(pids: Vec<u32>) -> Probe {
        Probe { pids }
    }

    /// Summed CPU time, `None` when any reading failed (or there are no PIDs).
    pub fn cpu(&self) -> Option<Duration> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids
            .iter()
            .map(|&pid| CpuMeter::new("server", pid).read())
            .sum()
    }

    /// Summed resident set size in bytes.
    pub fn rss_bytes(&self) -> Option<u64> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids.iter().map(|&pid| rss_bytes(pid)).sum()
    }
}

/// `VmRSS` of `pid` in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    vm_rss(&status)
}

/// `VmRSS:   12345 kB` from the text of `/proc/<pid>/status`, in bytes.
pub fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_comes_from_the_vmrss_line() {
        let status = "Name:\tchat\nVmPeak:\t  999 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(vm_rss(status), Some(12345 * 1024));
        assert_eq!(vm_rss("Name:\tchat\n"), None);
    }

    #[test]
    fn the_environment_points_at_the_backend() {
        let env = environment(Backend::RedisNats);
        let get = |key: &str| {
            env.iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(get("CHAT__STORAGE__URL"), Some("redis://127.0.0.1:6379"));
        assert_eq!(get("CHAT__BROKER__URL"), Some("nats://127.0.0.1:4222"));
        assert_eq!(get("CHAT__CHAT__RATE_BURST"), Some("1000000"));
    }
}
