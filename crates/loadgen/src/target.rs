//! Servers under test, run as child processes: started with their configuration, ready when they
//! print their `Serving.` line with the API address, killed when their guard drops. With TLS on,
//! each generates a self-signed certificate at start, which the load then trusts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::http::Endpoint;

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A server to start.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// Name in reports: `hello (memory)`.
    pub name: String,
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment added to ours.
    pub env: Vec<(String, String)>,
    /// The certificate the server presents, which it writes at start; `None` for plain HTTP.
    pub tls_cert: Option<PathBuf>,
}

impl TargetSpec {
    /// The platform service `service` (`hello`) from `program`, storing in `storage_url`,
    /// logging warnings only (plus the ready line), so log output is not part of what is
    /// measured. `tls_dir` turns TLS on with a self-signed certificate generated there; `None`
    /// turns it off.
    pub fn service(
        service: &str,
        name: &str,
        program: &Path,
        storage_url: &str,
        tls_dir: Option<&Path>,
    ) -> TargetSpec {
        let prefix = service.to_uppercase();
        let mut env = vec![
            ("SERVER__LISTEN", "127.0.0.1:0".to_owned()),
            ("ADMIN__LISTEN", "127.0.0.1:0".to_owned()),
            ("STORAGE__URL", storage_url.to_owned()),
            ("TELEMETRY__LOG_FORMAT", "json".to_owned()),
            // `platform::run` logs the ready line at INFO.
            ("TELEMETRY__LOG_LEVEL", "warn,platform::run=info".to_owned()),
            ("TLS__ENABLED", tls_dir.is_some().to_string()),
        ];
        if let Some(dir) = tls_dir {
            env.push(("TLS__SELF_SIGNED_DIR", dir.display().to_string()));
        }
        TargetSpec {
            name: name.to_owned(),
            program: program.to_owned(),
            args: vec!["serve".to_owned()],
            env: env
                .into_iter()
                .map(|(key, value)| (format!("{prefix}__{key}"), value))
                .collect(),
            tls_cert: tls_dir.map(|dir| dir.join(format!("{service}.crt"))),
        }
    }

    /// The bare axum baseline from `program`; `tls_dir` as for [`TargetSpec::service`].
    pub fn baseline(name: &str, program: &Path, tls_dir: Option<&Path>) -> TargetSpec {
        let mut args = vec!["--listen".to_owned(), "127.0.0.1:0".to_owned()];
        if let Some(dir) = tls_dir {
            args.extend(["--tls-dir".to_owned(), dir.display().to_string()]);
        }
        TargetSpec {
            name: name.to_owned(),
            program: program.to_owned(),
            args,
            env: Vec::new(),
            tls_cert: tls_dir.map(|dir| dir.join("baseline.crt")),
        }
    }

    /// Starts the server and waits for its ready line.
    pub async fn start(&self) -> anyhow::Result<RunningTarget> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", self.program.display()))?;
        let pid = child.id();
        let mut guard = ChildGuard { child };
        let stdout = guard
            .child
            .stdout
            .take()
            .context("the child's stdout is piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let wait_ready = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = ready_address(&line) {
                    return Ok(addr);
                }
                eprintln!("[{}] {line}", self.name);
            }
            bail!("{} exited before it was ready", self.name)
        };
        let addr = tokio::time::timeout(READY_TIMEOUT, wait_ready)
            .await
            .with_context(|| format!("{} was not ready within {READY_TIMEOUT:?}", self.name))??;
        // Keep draining stdout, so a chatty server never blocks on a full pipe.
        let name = self.name.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[{name}] {line}");
            }
        });
        Ok(RunningTarget {
            name: self.name.clone(),
            addr,
            tls_cert: self.tls_cert.clone(),
            pid,
            guard,
        })
    }
}

/// A started server.
#[derive(Debug)]
pub struct RunningTarget {
    /// Name in reports.
    pub name: String,
    /// Its API address.
    pub addr: SocketAddr,
    tls_cert: Option<PathBuf>,
    pid: Option<u32>,
    guard: ChildGuard,
}

impl RunningTarget {
    /// Where to send its load: over TLS, trusting only its certificate, when it serves TLS.
    pub fn endpoint(&self) -> anyhow::Result<Endpoint> {
        let endpoint = Endpoint::from_addr(self.addr);
        match &self.tls_cert {
            Some(cert) => Ok(endpoint.with_tls(crate::tls::client_config(cert)?)),
            None => Ok(endpoint),
        }
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Reads the server's CPU time, reported as `server`.
    pub fn cpu_meter(&self) -> Option<crate::cpu::CpuMeter> {
        self.pid.map(|pid| crate::cpu::CpuMeter::new("server", pid))
    }

    /// Kills the server and waits for it to exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.guard
            .child
            .kill()
            .await
            .with_context(|| format!("cannot stop {}", self.name))
    }
}

/// Kills the child when dropped, so an error or a panic never leaves a server running.
#[derive(Debug)]
struct ChildGuard {
    child: Child,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Fails only when the child has already exited, which is what we want.
        let _ = self.child.start_kill();
    }
}

/// The API address in a `Serving.` line: a JSON object with `"message":"Serving."` and
/// `"api":"HOST:PORT"`, at the top level or under `fields` (unflattened tracing JSON).
pub fn ready_address(line: &str) -> Option<SocketAddr> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    [&value, &value["fields"]].into_iter().find_map(|event| {
        if event["message"] != "Serving." {
            return None;
        }
        event["api"].as_str()?.parse().ok()
    })
}

/// A directory removed (with its contents) when dropped: the SQLite target's database lives here.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// Creates a fresh directory under the system temporary directory.
    pub fn new(prefix: &str) -> anyhow::Result<ScratchDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(ScratchDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_target_is_configured_for_tls_and_names_its_certificate() {
        let dir = Path::new("/tmp/bench/tls");
        let env = |spec: &TargetSpec, key: &str| {
            spec.env
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
        };
        let tls = TargetSpec::service(
            "messages",
            "messages (memory, TLS on)",
            Path::new("messages"),
            "memory:",
            Some(dir),
        );
        assert_eq!(env(&tls, "MESSAGES__TLS__ENABLED").as_deref(), Some("true"));
        assert_eq!(
            env(&tls, "MESSAGES__TLS__SELF_SIGNED_DIR").as_deref(),
            Some("/tmp/bench/tls")
        );
        assert_eq!(
            env(&tls, "MESSAGES__STORAGE__URL").as_deref(),
            Some("memory:")
        );
        assert_eq!(tls.tls_cert, Some(dir.join("messages.crt")));

        let plain = TargetSpec::service("hello", "hello", Path::new("hello"), "memory:", None);
        assert_eq!(env(&plain, "HELLO__TLS__ENABLED").as_deref(), Some("false"));
        assert_eq!(env(&plain, "HELLO__TLS__SELF_SIGNED_DIR"), None);
        assert_eq!(plain.tls_cert, None);

        let baseline = TargetSpec::baseline("baseline", Path::new("baseline"), Some(dir));
        assert_eq!(
            baseline.args,
            ["--listen", "127.0.0.1:0", "--tls-dir", "/tmp/bench/tls"]
        );
        assert_eq!(baseline.tls_cert, Some(dir.join("baseline.crt")));
    }

    #[test]
    fn the_ready_line_gives_the_api_address() {
        let hello = r#"{"timestamp":"2026-11-23T10:14:56Z","level":"INFO","message":"Serving.","api":"127.0.0.1:44013","admin":"127.0.0.1:40601","target":"platform::run"}"#;
        assert_eq!(
            ready_address(hello),
            Some("127.0.0.1:44013".parse().expect("address"))
        );
        let nested = r#"{"fields":{"message":"Serving.","api":"[::1]:8081"}}"#;
        assert_eq!(
            ready_address(nested),
            Some("[::1]:8081".parse().expect("address"))
        );
        for not_ready in [
            r#"{"message":"Stopped.","api":"127.0.0.1:1"}"#,
            r#"{"message":"Serving."}"#,
            r#"{"message":"Serving.","api":"not an address"}"#,
            "Serving. api=127.0.0.1:1",
            "",
        ] {
            assert_eq!(ready_address(not_ready), None, "{not_ready:?}");
        }
    }
}
