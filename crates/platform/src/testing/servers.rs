//! Private instances of the real servers (PostgreSQL, MariaDB, Redis, NATS, and moto as
//! DynamoDB) for tests that stop
//! a backend and start it again: each [`ServerProcess`] runs the machine's own server binary on a
//! loopback port of its own with a data directory of its own, so stopping it touches no other
//! test. The shared servers (`TEST_*_URL`) are never stopped.
//!
//! The port is chosen below the kernel's ephemeral range, so while the server is stopped no
//! outgoing connection can be given its number and it always starts again on the same port:
//! the service under test keeps its configured URL. The data directory survives a stop; it is
//! deleted, with the server stopped, on drop. The server is also started under
//! `setpriv --pdeathsig`, so even a test process killed outright leaves none behind.
//!
//! moto keeps everything in memory, so a restart loses its data and its tables. A DynamoDB
//! table outlives any outage of the service in front of it, so the private moto's table
//! ([`ServerProcess::url`]) is created again, empty, whenever it starts again; what was
//! written before the stop is gone, and tests assert only recovery.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::app::temp_path;
use super::tools::require;

/// Longest wait for a server to accept connections after it was started.
const START_LIMIT: Duration = Duration::from_secs(60);
/// Longest wait for a server to exit after it was asked to stop, before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(30);
/// Directories searched for the server programs (the tests clear nothing, but `PATH` is not
/// read: only `platform::config` reads the environment).
const PROGRAM_DIRS: [&str; 6] = [
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];
/// Ports are drawn from here: below the ephemeral range (32768 and up on Linux), above the
/// well-known servers of the machine; 25672 (RabbitMQ's distribution port) is avoided.
const PORTS: std::ops::Range<u16> = 20_000..30_000;

/// Which real server a [`ServerProcess`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// PostgreSQL (`initdb`, `postgres`), run as the `postgres` user with trust authentication.
    Postgres,
    /// MariaDB (`mariadb-install-db`, `mariadbd`), `root` without a password, database `test`.
    Mysql,
    /// Redis (`redis-server`) with an append-only file fsynced on every write, so what it
    /// acknowledged survives a stop.
    Redis,
    /// NATS with JetStream (`nats-server -js`).
    Nats,
    /// moto's server (`moto_server`, PyPI `moto[server]`) as DynamoDB, data in memory only.
    /// Found at `TEST_MOTO_SERVER` when set (pip installs it beside its Python, e.g. under
    /// pyenv), else in the usual program directories.
    DynamoDb,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Postgres => "postgres",
            Server::Mysql => "mariadb",
            Server::Redis => "redis",
            Server::Nats => "nats",
            Server::DynamoDb => "moto",
        }
    }

    /// The signal that stops the server cleanly: PostgreSQL's fast shutdown is SIGINT (what
    /// `pg_ctl stop -m fast` sends); the others stop cleanly on SIGTERM.
    fn stop_signal(self) -> &'static str {
        match self {
            Server::Postgres => "INT",
            Server::Mysql | Server::Redis | Server::Nats | Server::DynamoDb => "TERM",
        }
    }

    /// The signal the server gets if the test process dies first: PostgreSQL's immediate
    /// shutdown (SIGQUIT) also ends its backends, which a killed postmaster would orphan.
    fn death_signal(self) -> &'static str {
        match self {
            Server::Postgres => "QUIT",
            Server::Mysql | Server::Redis | Server::Nats | Server::DynamoDb => "KILL",
        }
    }
}

/// The programs one server needs, found on this machine.
#[derive(Debug, Clone)]
struct Programs {
    /// Prepares the data directory (PostgreSQL, MariaDB).
    init: Option<PathBuf>,
    /// The server itself.
    daemon: PathBuf,
    /// `setpriv`, which starts the server with a parent-death signal (and PostgreSQL as
    /// `postgres`, since it refuses to run as root).
    setpriv: PathBuf,
}

/// A private instance of a real server on `127.0.0.1`, for a test that stops and starts it.
/// Stopped, and its data directory deleted, on drop.
pub struct ServerProcess {
    server: Server,
    programs: Programs,
    dir: PathBuf,
    port: u16,
    child: Option<tokio::process::Child>,
    /// Whether it has been started before: moto then needs its table again.
    started_before: bool,
}

impl ServerProcess {
    /// Prepares a private `server` (a fresh data directory, a free port) and starts it.
    /// `None` when its programs are not installed: skipped locally, a failure under CI (see
    /// [`require`]).
    pub async fn start_new(server: Server) -> Option<ServerProcess> {
        let mut process = ServerProcess::new(server).await?;
        process.start().await;
        Some(process)
    }

    /// Prepares a private `server` without starting it: finds its programs, picks a free port
    /// and initialises a data directory. `None` when the programs are not installed.
    pub async fn new(server: Server) -> Option<ServerProcess> {
        let programs = find_programs(server)?;
        let dir = temp_path(server.name());
        std::fs::create_dir(&dir).expect("the server's directory is created");
        let process = ServerProcess {
            server,
            programs,
            dir,
            port: free_port(),
            child: None,
            started_before: false,
        };
        process.initialise().await;
        Some(process)
    }

    /// Which server this is.
    pub fn server(&self) -> Server {
        self.server
    }

    /// The loopback port the server listens on, the same after every restart.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL a service is configured with (`storage.url` or `broker.url`).
    pub fn url(&self) -> String {
        let port = self.port;
        match self.server {
            Server::Postgres => format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            Server::Mysql => format!("mysql://root@127.0.0.1:{port}/test"),
            Server::Redis => format!("redis://127.0.0.1:{port}"),
            Server::Nats => format!("nats://127.0.0.1:{port}"),
            Server::DynamoDb => {
                format!("dynamodb://private?region=us-east-1&endpoint=http://127.0.0.1:{port}")
            }
        }
    }

    /// Whether the server process is running (started and not yet stopped).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The server's process id while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().and_then(tokio::process::Child::id)
    }

    /// The directory holding the server's data, socket and log; deleted on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts the server on its port with its data directory and returns once it accepts
    /// connections (at most a minute; a server that exits or stays unready fails the test with
    /// its log). Does nothing when it is running already.
    pub async fn start(&mut self) {
        if self.child.is_some() {
            return;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))
            .expect("the server's log opens");
        let stderr = log.try_clone().expect("the server's log is shared");
        let mut command = tokio::process::Command::new(&self.programs.setpriv);
        command.arg(format!("--pdeathsig={}", self.server.death_signal()));
        if self.server == Server::Postgres {
            command.args(as_postgres());
        }
        command
            .arg("--")
            .arg(&self.programs.daemon)
            .args(self.daemon_args())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr);
        // The parent-death signal is sent when the thread that spawned the server ends: the
        // test's own thread or a runtime worker, which both outlive `self`.
        let child = command.spawn().expect("the server starts");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + START_LIMIT;
        loop {
            if self.accepts().await {
                if self.server == Server::DynamoDb && self.started_before {
                    self.create_dynamodb_table().await;
                }
                self.started_before = true;
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                panic!(
                    "{} exited before accepting connections ({status}):\n{}",
                    self.server.name(),
                    self.log_tail()
                );
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "{} did not accept connections within {START_LIMIT:?}:\n{}",
                    self.server.name(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Creates the table of [`url`](ServerProcess::url) again in a restarted moto, as the table
    /// of a real DynamoDB would still be there.
    async fn create_dynamodb_table(&self) {
        use crate::storage::dynamodb;
        let url = dynamodb::DynamoDbUrl::parse(&self.url()).expect("the private url parses");
        // A moto that has just started imports its DynamoDB code on the first request, which
        // on a busy machine takes longer than a service's operation timeout.
        let options = crate::storage::ConnectOptions {
            operation_timeout: START_LIMIT,
            ..crate::storage::ConnectOptions::from(&crate::config::StorageSettings::default())
        };
        let credentials =
            aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "moto");
        let client = dynamodb::client(&url, &options, Some(credentials)).await;
        dynamodb::create_table(&client, &url.table)
            .await
            .unwrap_or_else(|error| panic!("moto's table is created again: {error}"));
        dynamodb::wait_until_active(&client, &url.table, START_LIMIT)
            .await
            .unwrap_or_else(|error| panic!("moto's table becomes active: {error}"));
    }

    /// Stops the server the way an operator would (PostgreSQL: fast shutdown; the others:
    /// SIGTERM) and returns once the process has exited; killed if it takes over 30 s. Its data
    /// directory stays for the next [`start`](ServerProcess::start). Does nothing when stopped.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(&child, self.server.stop_signal());
        if tokio::time::timeout(STOP_LIMIT, child.wait())
            .await
            .is_err()
        {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// The last lines the server logged, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Creates the data directory with the server's own tool, when it has one.
    async fn initialise(&self) {
        let data = self.data_dir();
        let Some(init) = &self.programs.init else {
            return;
        };
        let mut command = tokio::process::Command::new(&self.programs.setpriv);
        match self.server {
            Server::Postgres => {
                let (uid, gid) = postgres_ids();
                std::os::unix::fs::chown(&self.dir, Some(uid), Some(gid))
                    .expect("the directory is given to postgres");
                command.args(as_postgres()).arg("--").arg(init).args([
                    "--auth=trust",
                    "--username=postgres",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                    "--pgdata",
                ]);
                command.arg(&data);
            }
            Server::Mysql => {
                command
                    .arg("--")
                    .arg(init)
                    .arg("--no-defaults")
                    .arg(format!("--datadir={}", data.display()))
                    .args([
                        "--user=root",
                        "--auth-root-authentication-method=normal",
                        "--skip-name-resolve",
                    ]);
            }
            Server::Redis | Server::Nats | Server::DynamoDb => return,
        }
        let output = command
            .stdin(Stdio::null())
            .output()
            .await
            .expect("the initialisation tool runs");
        assert!(
            output.status.success(),
            "{} {} failed:\n{}\n{}",
            init.display(),
            data.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn daemon_args(&self) -> Vec<String> {
        let port = self.port.to_string();
        let dir = self.dir.display().to_string();
        let data = self.data_dir().display().to_string();
        match self.server {
            Server::Postgres => vec![
                "-D".into(),
                data,
                "-p".into(),
                port,
                "-c".into(),
                "listen_addresses=127.0.0.1".into(),
                "-c".into(),
                format!("unix_socket_directories={dir}"),
            ],
            Server::Mysql => vec![
                "--no-defaults".into(),
                format!("--datadir={data}"),
                format!("--socket={dir}/mysqld.sock"),
                format!("--pid-file={dir}/mysqld.pid"),
                format!("--port={port}"),
                "--bind-address=127.0.0.1".into(),
                "--user=root".into(),
                "--skip-name-resolve".into(),
                "--skip-log-bin".into(),
                "--innodb-buffer-pool-size=32M".into(),
            ],
            Server::Redis => vec![
                "--port".into(),
                port,
                "--bind".into(),
                "127.0.0.1".into(),
                "--dir".into(),
                dir,
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "yes".into(),
                "--appendfsync".into(),
                "always".into(),
                "--daemonize".into(),
                "no".into(),
            ],
            Server::Nats => vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port,
                "-js".into(),
                "-sd".into(),
                data,
            ],
            Server::DynamoDb => vec!["-H".into(), "127.0.0.1".into(), "-p".into(), port],
        }
    }

    /// Whether the server answers as a ready server does: PostgreSQL authenticates a startup
    /// message (it refuses them while starting or recovering), MariaDB sends its handshake,
    /// Redis answers `PING` (not `-LOADING`), NATS sends `INFO`, moto answers HTTP.
    async fn accepts(&self) -> bool {
        let probe = async {
            let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
            let mut answer = [0u8; 5];
            match self.server {
                Server::Postgres => {
                    stream.write_all(&postgres_startup()).await.ok()?;
                    stream.read_exact(&mut answer[..1]).await.ok()?;
                    // 'R': an authentication request; with trust, AuthenticationOk.
                    Some(answer[0] == b'R')
                }
                Server::Mysql => {
                    stream.read_exact(&mut answer).await.ok()?;
                    // A packet header (4 bytes), then protocol version 10; an error is 0xff.
                    Some(answer[4] == 10)
                }
                Server::Redis => {
                    stream.write_all(b"PING\r\n").await.ok()?;
                    stream.read_exact(&mut answer).await.ok()?;
                    Some(&answer == b"+PONG")
                }
                Server::Nats => {
                    stream.read_exact(&mut answer[..4]).await.ok()?;
                    Some(&answer[..4] == b"INFO")
                }
                Server::DynamoDb => {
                    stream
                        .write_all(b"GET /moto-api/ HTTP/1.0\r\n\r\n")
                        .await
                        .ok()?;
                    stream.read_exact(&mut answer).await.ok()?;
                    Some(&answer == b"HTTP/")
                }
            }
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(2), probe).await,
            Ok(Some(true))
        )
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, self.server.stop_signal());
            let deadline = std::time::Instant::now() + STOP_LIMIT;
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.start_kill();
                while matches!(child.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `name` (e.g. `TERM`) to the child with the `kill` program (no `unsafe` for `libc`).
fn signal(child: &tokio::process::Child, name: &str) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-s", name, &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// `setpriv` arguments that run the program as `postgres`.
fn as_postgres() -> [&'static str; 3] {
    ["--reuid=postgres", "--regid=postgres", "--clear-groups"]
}

/// The uid and gid of `postgres`, from `/etc/passwd`.
fn postgres_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd is readable");
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&"postgres"))
        .and_then(|fields| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
        .expect("the postgres user exists (the postgresql package creates it)")
}

/// A PostgreSQL startup message (protocol 3.0) for user and database `postgres`.
fn postgres_startup() -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for part in ["user", "postgres", "database", "postgres", ""] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    let length = u32::try_from(body.len() + 4).unwrap_or(u32::MAX);
    let mut message = length.to_be_bytes().to_vec();
    message.extend(body);
    message
}

/// A port of [`PORTS`] nobody listens on now.
fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..1000)
        .map(|_| rng.random_range(PORTS))
        .filter(|port| *port != 25_672)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port below the ephemeral range")
}

/// `TEST_MOTO_SERVER`, else `moto_server` in [`PROGRAM_DIRS`].
fn moto_server() -> Option<PathBuf> {
    #[allow(clippy::disallowed_methods)]
    // Test infrastructure reads the TEST_* variables by design.
    let named = std::env::var_os("TEST_MOTO_SERVER")
        .filter(|path| !path.is_empty())
        .map(PathBuf::from);
    named
        .filter(|path| path.is_file())
        .or_else(|| program("moto_server"))
}

fn program(name: &str) -> Option<PathBuf> {
    PROGRAM_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
}

/// The newest `/usr/lib/postgresql/<version>/bin` that holds `initdb` and `postgres`.
fn postgres_bin() -> Option<PathBuf> {
    let versions = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    versions
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("postgres").is_file())
                .then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

fn find_programs(server: Server) -> Option<Programs> {
    let (init, daemon, what) = match server {
        Server::Postgres => {
            let bin = postgres_bin();
            (
                bin.as_ref().map(|bin| bin.join("initdb")),
                bin.map(|bin| bin.join("postgres")),
                "PostgreSQL's initdb and postgres (Debian package postgresql)",
            )
        }
        Server::Mysql => (
            program("mariadb-install-db").or_else(|| program("mysql_install_db")),
            program("mariadbd").or_else(|| program("mysqld")),
            "mariadb-install-db and mariadbd (Debian package mariadb-server)",
        ),
        Server::Redis => (
            None,
            program("redis-server"),
            "redis-server (Debian package redis-server)",
        ),
        Server::Nats => (
            None,
            program("nats-server"),
            "nats-server (Debian package nats-server)",
        ),
        Server::DynamoDb => (
            None,
            moto_server(),
            "moto_server (PyPI moto[server]; TEST_MOTO_SERVER names it when it is not in /usr/bin)",
        ),
    };
    let needs_init = matches!(server, Server::Postgres | Server::Mysql);
    let setpriv = program("setpriv");
    let found = daemon.is_some() && setpriv.is_some() && (init.is_some() || !needs_init);
    if !require(&format!("{what} and setpriv (util-linux)"), found) {
        return None;
    }
    Some(Programs {
        init,
        daemon: daemon?,
        setpriv: setpriv?,
    })
}

/// A storage backend a test suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `memory:`, always available.
    Memory,
    /// A fresh SQLite file in the temporary directory, always available.
    Sqlite,
    /// `TEST_POSTGRES_URL`.
    Postgres,
    /// `TEST_MYSQL_URL`.
    Mysql,
    /// `TEST_REDIS_URL`.
    Redis,
    /// `TEST_DYNAMODB_URL` (an emulator's `dynamodb://TABLE?region=…&endpoint=…`), with a
    /// table of its own per call; the SDK takes the emulator's (dummy) credentials from
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    DynamoDb,
}

impl Backend {
    /// Every backend, in a fixed order.
    pub const ALL: [Backend; 6] = [
        Backend::Memory,
        Backend::Sqlite,
        Backend::Postgres,
        Backend::Mysql,
        Backend::Redis,
        Backend::DynamoDb,
    ];

    /// The variable naming a server backend's URL.
    pub fn variable(self) -> Option<&'static str> {
        match self {
            Backend::Memory | Backend::Sqlite => None,
            Backend::Postgres => Some("TEST_POSTGRES_URL"),
            Backend::Mysql => Some("TEST_MYSQL_URL"),
            Backend::Redis => Some("TEST_REDIS_URL"),
            Backend::DynamoDb => Some("TEST_DYNAMODB_URL"),
        }
    }

    /// The `storage.url` to test against, or `None` when the server backend is not configured;
    /// then it prints `skipped: …` so a plain `cargo test` says what it did not run.
    ///
    /// Under CI (`CI` set) a missing variable is a failure, never a silent skip.
    #[allow(clippy::disallowed_methods)] // Test infrastructure reads the TEST_* variables by design.
    pub fn storage_url(self, suite: &str) -> Option<String> {
        match (self, self.variable()) {
            (Backend::Memory, _) => Some("memory:".to_owned()),
            (Backend::Sqlite, _) => Some(format!("sqlite://{}", temp_path("db").display())),
            (_, Some(variable)) => {
                let url = std::env::var(variable).ok().filter(|url| !url.is_empty());
                let what = format!("{variable} for the {self:?} {suite} suite");
                if !require(&what, url.is_some()) {
                    return None;
                }
                if self == Backend::DynamoDb {
                    let credentials = std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
                        && std::env::var_os("AWS_SECRET_ACCESS_KEY").is_some();
                    let what = format!(
                        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any values, for the \
                         emulator) for the {self:?} {suite} suite"
                    );
                    if !require(&what, credentials) {
                        return None;
                    }
                    return url.map(|url| unique_dynamodb_table(&url));
                }
                url
            }
            (_, None) => None,
        }
    }
}

/// `url` (`dynamodb://TABLE?…`) with a table of its own, `TABLE_` and 16 random hex digits, so
/// tests never see each other's items.
pub fn unique_dynamodb_table(url: &str) -> String {
    let suffix = format!("_{:016x}", rand::random::<u64>());
    match url.find('?') {
        Some(query) => format!("{}{suffix}{}", &url[..query], &url[query..]),
        None => format!("{url}{suffix}"),
    }
}
