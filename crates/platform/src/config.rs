//! Layered configuration: built-in defaults < TOML file (`--config`) < `<SVC>__SECTION__KEY`
//! environment variables, loaded once at start into typed sections.
//!
//! Invariant: this is the only module that reads the process environment
//! ([`Source::from_process`]); everything else receives a [`Settings`] value. Tests build a
//! [`Source`] by hand, so they never set environment variables.
//!
//! Unknown keys are errors that name the key, at every level: each section denies unknown
//! fields, and [`load`] checks the top-level section names itself.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Why a configuration could not be loaded. Printed as one line by `check-config` (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file, a value or a key is wrong; the message names it.
    #[error("{0}")]
    Invalid(String),
}

impl From<config::ConfigError> for ConfigError {
    fn from(error: config::ConfigError) -> Self {
        ConfigError::Invalid(error.to_string())
    }
}

/// Where configuration comes from: an optional TOML file and a set of environment variables.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// The `--config FILE`, if given. It must exist.
    pub file: Option<PathBuf>,
    /// Environment variables; only those prefixed `<SVC>__` are read.
    pub env: BTreeMap<String, String>,
}

impl Source {
    /// The process environment plus an optional file: what a binary uses. Called once, in `run`.
    #[allow(clippy::disallowed_methods)] // The one place the environment is read.
    pub fn from_process(file: Option<PathBuf>) -> Source {
        Source {
            file,
            env: std::env::vars().collect(),
        }
    }

    /// A source of explicit `<SVC>__SECTION__KEY` pairs, for tests.
    ///
    /// ```
    /// let source = platform::config::Source::from_pairs([("HELLO__STORAGE__URL", "memory:")]);
    /// assert_eq!(source.env.len(), 1);
    /// ```
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Source {
        Source {
            file: None,
            env: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

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

/// What [`load`] returns: the platform's sections and the service's own.
#[derive(Debug, Clone)]
pub struct Loaded<S> {
    /// The platform's sections.
    pub platform: Settings,
    /// The service's sections (`[messages]`, `[auth]`, …).
    pub service: S,
}

/// Loads defaults < file < environment for service `name` and checks every key.
///
/// `S` holds the service's own sections; its field names are the extra top-level sections
/// allowed. Values in the environment are strings; numbers and booleans are parsed from them.
///
/// ```
/// use platform::config::{load, NoServiceSettings, Settings, Source};
/// let defaults = Settings::for_service("hello", 8081);
/// let source = Source::from_pairs([("HELLO__SERVER__MAX_CONCURRENCY", "8")]);
/// let loaded = load::<NoServiceSettings>("hello", &defaults, &source).unwrap();
/// assert_eq!(loaded.platform.server.max_concurrency, 8);
///
/// let bad = Source::from_pairs([("HELLO__SERVER__COLOUR", "blue")]);
/// let error = load::<NoServiceSettings>("hello", &defaults, &bad).unwrap_err();
/// assert!(error.to_string().contains("colour"));
/// ```
pub fn load<S>(name: &str, defaults: &Settings, source: &Source) -> Result<Loaded<S>, ConfigError>
where
    S: Serialize + DeserializeOwned + Default,
{
    let platform_defaults = config::Config::try_from(defaults)?;
    let service_defaults = config::Config::try_from(&S::default())?;
    let mut builder = config::Config::builder()
        .add_source(platform_defaults)
        .add_source(service_defaults);
    if let Some(file) = &source.file {
        if !file.is_file() {
            return Err(ConfigError::Invalid(format!(
                "configuration file {} does not exist",
                file.display()
            )));
        }
        builder =
            builder.add_source(config::File::from(file.as_path()).format(config::FileFormat::Toml));
    }
    let prefix = name.to_ascii_uppercase();
    let env: config::Map<String, String> = source
        .env
        .iter()
        .filter(|(key, _)| key.starts_with(&format!("{prefix}__")))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let environment = config::Environment::with_prefix(&prefix)
        .prefix_separator("__")
        .separator("__")
        .source(Some(env));
    let merged = builder.add_source(environment).build()?;

    let mut known = section_names(defaults)?;
    known.extend(section_names(&S::default())?);
    let table = merged
        .clone()
        .try_deserialize::<BTreeMap<String, config::Value>>()?;
    if let Some(unknown) = table.keys().find(|key| !known.contains(key)) {
        return Err(ConfigError::Invalid(format!(
            "unknown configuration section `{unknown}`; expected one of: {}",
            known.join(", ")
        )));
    }
    let platform: Settings = merged.clone().try_deserialize()?;
    let service: S = merged.try_deserialize()?;
    Ok(Loaded { platform, service })
}

fn section_names<T: Serialize>(value: &T) -> Result<Vec<String>, ConfigError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => Ok(map.keys().cloned().collect()),
        Ok(_) => Ok(Vec::new()),
        Err(error) => Err(ConfigError::Invalid(error.to_string())),
    }
}

/// Renders effective settings as TOML with secrets redacted, for `check-config`.
pub fn render<S: Serialize>(loaded: &Loaded<S>) -> Result<String, ConfigError> {
    let mut table = toml::Table::try_from(&loaded.platform)
        .map_err(|error| ConfigError::Invalid(error.to_string()))?;
    let service = toml::Table::try_from(&loaded.service)
        .map_err(|error| ConfigError::Invalid(error.to_string()))?;
    table.extend(service);
    toml::to_string(&table).map_err(|error| ConfigError::Invalid(error.to_string()))
}

/// Lists that come from TOML as arrays and from the environment as comma-separated strings
/// (`MESSAGES__AUTH__TOKENS=a,b`). Use with `#[serde(deserialize_with = "list::deserialize")]`.
pub mod list {
    use std::fmt;
    use std::marker::PhantomData;
    use std::str::FromStr;

    use serde::Deserializer;
    use serde::de::{self, SeqAccess, Visitor};

    /// Reads a sequence of `T`, or a string of `T`s separated by commas (blank items skipped).
    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr + serde::Deserialize<'de>,
        T::Err: fmt::Display,
    {
        struct ListVisitor<T>(PhantomData<T>);

        impl<'de, T> Visitor<'de> for ListVisitor<T>
        where
            T: FromStr + serde::Deserialize<'de>,
            T::Err: fmt::Display,
        {
            type Value = Vec<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list, or a comma-separated string")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Vec<T>, E> {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| {
                        item.parse()
                            .map_err(|error| E::custom(format!("`{item}`: {error}")))
                    })
                    .collect()
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(items)
            }
        }

        deserializer.deserialize_any(ListVisitor(PhantomData))
    }
}

/// A secret string (a token, a password). `Debug` and `Serialize` print `***`, so
/// `check-config` and logs never show it; [`Secret::expose`] gives the value.
///
/// ```
/// let secret = platform::config::Secret::new("hunter2");
/// assert_eq!(format!("{secret:?}"), "***");
/// assert_eq!(secret.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Secret, Self::Err> {
        Ok(Secret::new(value))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

/// A URL that may carry a password. `Debug`, `Display` and `Serialize` replace the password with
/// `***`; only [`SecretUrl::expose`] gives the real value, for the code that connects.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> SecretUrl {
        SecretUrl(url.into())
    }

    /// The URL with its password, for connecting. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password replaced by `***`.
    ///
    /// ```
    /// let url = platform::config::SecretUrl::new("postgres://app:hunter2@db/app");
    /// assert_eq!(url.redacted(), "postgres://app:***@db/app");
    /// ```
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut parsed) if parsed.password().is_some() => {
                // Only fails for URLs that cannot have a password, which this one has.
                let _ = parsed.set_password(Some("***"));
                parsed.to_string()
            }
            _ => self.0.clone(),
        }
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello_defaults() -> Settings {
        Settings::for_service("hello", 8081)
    }

    fn load_pairs(pairs: &[(&str, &str)]) -> Result<Loaded<NoServiceSettings>, ConfigError> {
        load(
            "hello",
            &hello_defaults(),
            &Source::from_pairs(pairs.iter().copied()),
        )
    }

    #[test]
    fn defaults_follow_the_design_table() {
        let loaded = load_pairs(&[]).unwrap();
        let s = loaded.platform;
        assert_eq!(s.server.listen.to_string(), "127.0.0.1:8081");
        assert_eq!(s.admin.listen.to_string(), "127.0.0.1:9081");
        assert_eq!(s.server.request_timeout, Duration::from_secs(10));
        assert_eq!(s.server.body_limit, ByteSize::kib(64));
        assert_eq!(s.server.unread_body_drain, ByteSize::kib(64));
        assert_eq!(s.server.max_concurrency, 1024);
        assert_eq!(s.storage.url.expose(), "sqlite://./data/hello.db");
        assert_eq!(s.shutdown.drain_delay, Duration::from_secs(5));
        assert_eq!(s.shutdown.grace, Duration::from_secs(25));
        assert_eq!(s.telemetry.log_level, "info");
    }

    #[test]
    fn environment_overrides_nested_keys_with_double_underscores() {
        let loaded = load_pairs(&[
            ("HELLO__STORAGE__URL", "memory:"),
            ("HELLO__SERVER__REQUEST_TIMEOUT", "250ms"),
            ("HELLO__SERVER__BODY_LIMIT", "1KiB"),
            ("HELLO__SERVER__UNREAD_BODY_DRAIN", "2KiB"),
            ("HELLO__STORAGE__MIGRATE", "false"),
            ("OTHER__SERVER__MAX_CONCURRENCY", "1"),
        ])
        .unwrap();
        let s = loaded.platform;
        assert_eq!(s.storage.url.expose(), "memory:");
        assert_eq!(s.server.request_timeout, Duration::from_millis(250));
        assert_eq!(s.server.body_limit, ByteSize::kib(1));
        assert_eq!(s.server.unread_body_drain, ByteSize::kib(2));
        assert!(!s.storage.migrate);
        assert_eq!(
            s.server.max_concurrency, 1024,
            "another service's variables are ignored"
        );
    }

    #[test]
    fn file_sits_between_defaults_and_environment() {
        let dir = std::env::temp_dir().join(format!("platform-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hello.toml");
        std::fs::write(
            &file,
            "[server]\nmax_concurrency = 7\nrequest_timeout = \"3s\"\n",
        )
        .unwrap();
        let mut source = Source::from_pairs([("HELLO__SERVER__MAX_CONCURRENCY", "9")]);
        source.file = Some(file);
        let loaded = load::<NoServiceSettings>("hello", &hello_defaults(), &source).unwrap();
        assert_eq!(loaded.platform.server.max_concurrency, 9);
        assert_eq!(
            loaded.platform.server.request_timeout,
            Duration::from_secs(3)
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_keys_and_sections_are_errors_that_name_them() {
        let error = load_pairs(&[("HELLO__SERVER__LISTN", "127.0.0.1:1")]).unwrap_err();
        assert!(error.to_string().contains("listn"), "{error}");
        let error = load_pairs(&[("HELLO__DATABASE__URL", "x")]).unwrap_err();
        assert!(error.to_string().contains("`database`"), "{error}");
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(load_pairs(&[("HELLO__SERVER__REQUEST_TIMEOUT", "soon")]).is_err());
        assert!(load_pairs(&[("HELLO__SERVER__MAX_CONCURRENCY", "many")]).is_err());
        assert!(load_pairs(&[("HELLO__SERVER__LISTEN", "nowhere")]).is_err());
    }

    #[test]
    fn missing_file_is_an_error() {
        let source = Source {
            file: Some(PathBuf::from("/nonexistent/hello.toml")),
            ..Source::default()
        };
        let error = load::<NoServiceSettings>("hello", &hello_defaults(), &source).unwrap_err();
        assert!(error.to_string().contains("does not exist"));
    }

    #[test]
    fn lists_come_from_arrays_or_comma_separated_strings() {
        let loaded =
            load_pairs(&[("HELLO__SERVER__TRUSTED_PROXIES", "10.0.0.0/8, ::1/128")]).unwrap();
        let proxies: Vec<String> = loaded
            .platform
            .server
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(proxies, ["10.0.0.0/8", "::1/128"]);
        let error = load_pairs(&[("HELLO__SERVER__TRUSTED_PROXIES", "10.0.0.0/33")]).unwrap_err();
        assert!(error.to_string().contains("10.0.0.0/33"), "{error}");

        let dir = std::env::temp_dir().join(format!("platform-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hello.toml");
        std::fs::write(&file, "[server]\ntrusted_proxies = [\"192.168.0.0/16\"]\n").unwrap();
        let source = Source {
            file: Some(file),
            ..Source::default()
        };
        let loaded = load::<NoServiceSettings>("hello", &hello_defaults(), &source).unwrap();
        assert_eq!(loaded.platform.server.trusted_proxies.len(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rendering_redacts_passwords() {
        let loaded = load_pairs(&[(
            "HELLO__STORAGE__URL",
            "postgres://app:hunter2@127.0.0.1/app",
        )])
        .unwrap();
        let text = render(&loaded).unwrap();
        assert!(text.contains("postgres://app:***@127.0.0.1/app"), "{text}");
        assert!(!text.contains("hunter2"));
        assert!(!format!("{:?}", loaded.platform).contains("hunter2"));
    }
}
