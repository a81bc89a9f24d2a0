//! The platform's sections (`[server]`, `[admin]`, `[storage]`, …), their defaults and limits:
//! what a configuration may say.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use super::{SecretUrl, list};

/// The platform's sections, shared by every service.
///
/// The top level does not deny unknown fields: a service's own sections sit beside these, and
/// [`load`] checks every section name against both.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The public API listener and its limits.
    pub server: ServerSettings,
    /// The admin listener (`/metrics`, `/readyz`, `/info`), never routed publicly.
    pub admin: AdminSettings,
    /// Where the service keeps its data.
    pub storage: StorageSettings,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
    /// How the process stops.
    pub shutdown: ShutdownSettings,
    /// How dependency checks behind `/readyz` run.
    pub health: HealthSettings,
    /// TLS on the API listener.
    pub tls: TlsSettings,
    /// Per-client token buckets, for the routes a service puts behind them.
    pub ratelimit: RateLimitSettings,
    /// The publish/subscribe broker between replicas (chat).
    pub broker: BrokerSettings,
}

/// `[broker]`: where replicas publish to each other. Its connection follows the timeouts of
/// `[storage]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerSettings {
    /// `memory:` (one process; the default), `redis://…` or `nats://…`.
    pub url: SecretUrl,
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            url: SecretUrl::new("memory:"),
        }
    }
}

/// `[server]`: the public API listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address of the public API. Default: `127.0.0.1:<service port>`.
    pub listen: SocketAddr,
    /// Longest time one request may take; past it the answer is a 503 problem. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Largest request body; above it the answer is a 413 problem. Default `64KiB`.
    pub body_limit: ByteSize,
    /// Requests in flight at once; beyond it requests are shed with 503 + `Retry-After`. Default 1024.
    pub max_concurrency: usize,
    /// Open connections per listener; past it a new connection is closed at once and counted in
    /// `http_server_refused_connections_total`. Default 8192 (the process's file descriptor
    /// limit in `deploy/` is 20,000, shared with the admin listener and the storage pools).
    pub max_connections: usize,
    /// Longest time from a connection's accept to its first request head (TLS handshake
    /// included), and for each later HTTP/1.1 head; past it the connection is closed. Also the
    /// time an HTTP/2 peer has to answer a keep-alive ping. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Streams at once on one HTTP/2 connection. Default 256.
    pub http2_max_streams: u32,
    /// Most bytes of a request body still unread when its answer is ready (an answer given
    /// before the body was read: 415, 401, 429, 404, 503) that are read and discarded before
    /// the answer ends, within the request's `request_timeout`. HTTP/2 clients such as curl
    /// drop an answer followed by a stream reset while they are still sending; past this bound
    /// (or declared past it) the body is left unread and the stream is reset, or an HTTP/1.1
    /// connection closed, after the answer. `0` turns the drain off. Default `64KiB`.
    pub unread_body_drain: ByteSize,
    /// Peers (CIDRs) whose `X-Forwarded-For` is believed for the client's address. Default none.
    /// In the environment, a comma-separated list.
    #[serde(deserialize_with = "list::deserialize")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// `[admin]`: the admin listener.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Address of the admin endpoints. Default: the API port + 1000 on 127.0.0.1.
    pub listen: SocketAddr,
}

/// `[storage]`: the backend, chosen by the scheme of `url`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// `memory:`, `sqlite://PATH`, `postgres://…`, `mysql://…`, `redis://…` or
    /// `dynamodb://TABLE?region=…[&endpoint=…]` (credentials from the AWS SDK's chain, never in
    /// the URL). Default `sqlite://./data/<svc>.db`. Its password is redacted wherever it is
    /// printed.
    pub url: SecretUrl,
    /// Create or upgrade the schema when `serve` starts. Default `true`.
    pub migrate: bool,
    /// Largest number of pooled connections. Default 16.
    pub max_connections: u32,
    /// Longest wait for a connection, so a dead server fails fast; the broker's too. Default `2s`.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest time one storage operation may take; a broker's publish too. Default `3s`.
    #[serde(with = "humantime_serde")]
    pub operation_timeout: Duration,
    /// SQLite: most writes one group commit (one transaction, one `fsync`) gathers. Default 256.
    pub group_commit_max_writes: usize,
    /// SQLite: longest a group commit keeps taking more writes before it commits. Default `2ms`.
    #[serde(with = "humantime_serde")]
    pub group_commit_max_delay: Duration,
    /// SQLite: writes waiting for the writer, beyond which a writer waits (within
    /// `operation_timeout`) for room. Default 4096.
    pub write_queue: usize,
    /// Longest a starting service waits for its storage (and broker) to answer: a server still
    /// starting, or slow to take its first connection, is retried until then instead of
    /// failing the start. Also bounds how long `migrate` waits for a new DynamoDB table to become
    /// `ACTIVE`. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub startup_timeout: Duration,
}

/// `[telemetry]`: logs to stdout and optional OTLP traces.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// `pretty` or `json`. Default: `pretty` on a terminal, else `json`.
    pub log_format: Option<LogFormat>,
    /// A `RUST_LOG`-style filter. Default `info`.
    pub log_level: String,
    /// OTLP/HTTP collector base URL (e.g. `http://127.0.0.1:4318`); traces are exported when set.
    pub otlp_endpoint: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, coloured.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `[shutdown]`: the drain sequence after SIGTERM or SIGINT.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// Readiness fails but listeners keep accepting, so load balancers can stop routing. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// Then the hard deadline for requests in flight. Default `25s`.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
}

/// `[health]`: the background dependency checks behind `/readyz`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSettings {
    /// How often each dependency is checked. Default `2s`.
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    /// Longest a single check may take before it counts as failed. Default `1s`.
    #[serde(with = "humantime_serde")]
    pub check_timeout: Duration,
}

/// `[tls]`: TLS on the API listener (rustls). The admin listener stays plain: it is never
/// routed publicly.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// Serve the API over TLS. Default: off, except for services whose defaults turn it on
    /// (messages).
    pub enabled: bool,
    /// PEM certificate chain. Set together with `key`; when both are unset a self-signed
    /// certificate for `localhost`, `127.0.0.1` and `::1` is generated into `self_signed_dir`.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Where the generated certificate (`<svc>.crt`) and key (`<svc>.key`) live; reused on the
    /// next start, so clients that trust it keep trusting it. Default `./data/tls`.
    pub self_signed_dir: PathBuf,
}

/// `[ratelimit]`: a token bucket per client address (see [`crate::http::ratelimit`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Enforce the limit. Default off: behind a proxy that is not in `server.trusted_proxies`,
    /// every client would share the proxy's bucket.
    pub enabled: bool,
    /// Tokens added per second: the sustained rate one client may keep up. Default 50.
    pub per_second: f64,
    /// Bucket size: the burst one client may send at once. Default 100.
    pub burst: u32,
    /// Buckets kept in memory; beyond it, idle (full) buckets are dropped. Default 100000.
    pub max_clients: usize,
    /// Where buckets live: `memory:` (this process; the default) or `redis://…`, shared by
    /// every replica so scaling out does not multiply a client's allowance.
    pub url: SecretUrl,
    /// Prefix of the Redis keys (`ratelimit:<namespace>:<client>`). Default: the service's name.
    pub namespace: Option<String>,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            enabled: false,
            cert: None,
            key: None,
            self_signed_dir: PathBuf::from("./data/tls"),
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            enabled: false,
            per_second: 50.0,
            burst: 100,
            max_clients: 100_000,
            url: SecretUrl::new("memory:"),
            namespace: None,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::for_service("service", 8080)
    }
}

impl Settings {
    /// The built-in defaults of a service called `name` whose API listens on `api_port`.
    pub fn for_service(name: &str, api_port: u16) -> Settings {
        Settings {
            server: ServerSettings {
                listen: SocketAddr::from(([127, 0, 0, 1], api_port)),
                ..ServerSettings::default()
            },
            admin: AdminSettings {
                listen: SocketAddr::from(([127, 0, 0, 1], api_port.saturating_add(1000))),
            },
            storage: StorageSettings {
                url: SecretUrl::new(format!("sqlite://./data/{name}.db")),
                ..StorageSettings::default()
            },
            telemetry: TelemetrySettings::default(),
            shutdown: ShutdownSettings::default(),
            health: HealthSettings::default(),
            tls: TlsSettings::default(),
            ratelimit: RateLimitSettings::default(),
            broker: BrokerSettings::default(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout: Duration::from_secs(10),
            body_limit: ByteSize::kib(64),
            max_concurrency: 1024,
            max_connections: 8192,
            header_read_timeout: Duration::from_secs(5),
            http2_max_streams: 256,
            unread_body_drain: ByteSize::kib(64),
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 9080)),
        }
    }
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            url: SecretUrl::new("memory:"),
            migrate: true,
            max_connections: 16,
            connect_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(3),
            group_commit_max_writes: 256,
            group_commit_max_delay: Duration::from_millis(2),
            write_queue: 4096,
            startup_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            log_format: None,
            log_level: "info".to_owned(),
            otlp_endpoint: None,
        }
    }
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        ShutdownSettings {
            drain_delay: Duration::from_secs(5),
            grace: Duration::from_secs(25),
        }
    }
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            check_interval: Duration::from_secs(2),
            check_timeout: Duration::from_secs(1),
        }
    }
}

/// A service with no sections of its own.
///
/// A service's own settings type is deserialised from the whole configuration, so its top level
/// must not deny unknown fields (the platform's sections are there); its sections should.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NoServiceSettings {}
