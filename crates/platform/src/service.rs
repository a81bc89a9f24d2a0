//! What a service hands the platform: its name, version, API port and a function that builds
//! its routes from a [`Context`] (settings, storage, health). Everything else — config, stack,
//! admin, telemetry, shutdown — the platform does the same way for every service.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{ConfigError, NoServiceSettings, Settings};
use crate::health::Health;
use crate::storage::{self, KeyValue, StorageError};

/// Why a service could not start. `run` prints it as one line and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid (exit code 2).
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// The storage backend could not be opened or migrated.
    #[error("storage error: {0}")]
    Storage(#[from] StorageError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from the configuration.
        addr: std::net::SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// TLS is on but its certificate or key is unusable.
    #[error("TLS error: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// Logging or tracing could not start.
    #[error("telemetry error: {0}")]
    Telemetry(#[from] crate::telemetry::TelemetryError),
    /// The service's own start-up code failed.
    #[error("{0}")]
    Service(String),
}

type BuildFn<S> =
    Arc<dyn Fn(Context<S>) -> BoxFuture<'static, Result<Router, StartError>> + Send + Sync>;

/// A service as the platform runs it.
///
/// ```
/// use axum::{Router, routing::get};
/// let service = platform::Service::new("demo", "0.1.0", 8089, |_context: platform::Context| async {
///     Ok(Router::new().route("/demo", get(|| async { "hi" })))
/// });
/// assert_eq!(service.name(), "demo");
/// ```
pub struct Service<S = NoServiceSettings> {
    name: &'static str,
    version: &'static str,
    api_port: u16,
    build: BuildFn<S>,
    openapi: Option<fn() -> utoipa::openapi::OpenApi>,
    slos: Vec<crate::slo::Slo>,
    dashboard_metrics: &'static [crate::slo::dashboard::ServiceMetric],
    defaults: Option<fn(&mut Settings)>,
    index: bool,
}

impl<S> Clone for Service<S> {
    fn clone(&self) -> Self {
        Service {
            name: self.name,
            version: self.version,
            api_port: self.api_port,
            build: self.build.clone(),
            openapi: self.openapi,
            slos: self.slos.clone(),
            dashboard_metrics: self.dashboard_metrics,
            defaults: self.defaults,
            index: self.index,
        }
    }
}

impl<S> Service<S>
where
    S: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
{
    /// Declares service `name` at `version`, whose API listens on `api_port` by default (admin on
    /// `api_port + 1000`), with `build` turning a [`Context`] into its routes.
    pub fn new<F, Fut>(name: &'static str, version: &'static str, api_port: u16, build: F) -> Self
    where
        F: Fn(Context<S>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Router, StartError>> + Send + 'static,
    {
        Service {
            name,
            version,
            api_port,
            build: Arc::new(move |context| Box::pin(build(context))),
            openapi: None,
            slos: Vec::new(),
            dashboard_metrics: &[],
            defaults: None,
            index: false,
        }
    }

    /// Declares the service's SLOs; rules, dashboards, OpenSLO and `/slo` come from these.
    ///
    /// # Panics
    ///
    /// When a declaration is invalid ([`Slo::validate`](crate::slo::Slo::validate)) or two
    /// share a name: SLOs are code, so this is a bug, found by the first test that builds the
    /// service rather than by a dashboard that stays empty.
    pub fn with_slos(mut self, slos: Vec<crate::slo::Slo>) -> Self {
        let mut names = std::collections::HashSet::new();
        for slo in &slos {
            if let Err(error) = slo.validate() {
                panic!("service {}: {error}", self.name);
            }
            assert!(
                names.insert(slo.name),
                "service {}: two SLOs are named `{}`",
                self.name,
                slo.name
            );
        }
        self.slos = slos;
        self
    }

    /// The declared SLOs.
    pub fn slos(&self) -> &[crate::slo::Slo] {
        &self.slos
    }

    /// Adds a row of the service's own metrics to its generated dashboard.
    ///
    /// ```
    /// # use axum::Router;
    /// use platform::slo::dashboard::ServiceMetric;
    /// const METRICS: &[ServiceMetric] = &[ServiceMetric::Counter {
    ///     metric: "demo_drops_total",
    ///     title: "Drops",
    ///     description: "Drops per second.",
    /// }];
    /// let service = platform::Service::new("demo", "0.1.0", 8089, |_: platform::Context| async {
    ///     Ok(Router::new())
    /// })
    /// .with_dashboard_metrics(METRICS);
    /// assert_eq!(service.dashboard_metrics().len(), 1);
    /// ```
    pub fn with_dashboard_metrics(
        mut self,
        metrics: &'static [crate::slo::dashboard::ServiceMetric],
    ) -> Self {
        self.dashboard_metrics = metrics;
        self
    }

    /// The service's own metrics its dashboard shows.
    pub fn dashboard_metrics(&self) -> &'static [crate::slo::dashboard::ServiceMetric] {
        self.dashboard_metrics
    }

    /// The Grafana dashboard generated from the SLOs and the dashboard metrics.
    pub fn dashboard(&self) -> String {
        crate::slo::dashboard::render_with(self.name, &self.slos, self.dashboard_metrics)
    }

    /// Serves the OpenAPI document `openapi()` at `GET /openapi.json` on the API port, completed
    /// with the answers the platform gives on every route ([`crate::http::openapi::document`]).
    pub fn with_openapi(mut self, openapi: fn() -> utoipa::openapi::OpenApi) -> Self {
        self.openapi = Some(openapi);
        self
    }

    /// Serves `GET /` on the API port: a small JSON index with the service's name, version and
    /// where its OpenAPI document is. For API-only services, so that a probe of `/` (the
    /// blackbox exporter's) and a person trying the root both get a 200 rather than a 404.
    ///
    /// ```
    /// # use axum::Router;
    /// let _service = platform::Service::new("demo", "0.1.0", 8089, |_: platform::Context| async {
    ///     Ok(Router::new())
    /// })
    /// .with_index();
    /// ```
    pub fn with_index(mut self) -> Self {
        self.index = true;
        self
    }

    /// Changes the service's built-in defaults (before the file and the environment apply),
    /// e.g. TLS on by default, or a body limit that fits the service's largest valid request.
    ///
    /// ```
    /// # use axum::Router;
    /// let service = platform::Service::new("demo", "0.1.0", 8089, |_: platform::Context| async {
    ///     Ok(Router::new())
    /// })
    /// .with_defaults(|settings| settings.tls.enabled = true);
    /// assert!(service.default_settings().tls.enabled);
    /// ```
    pub fn with_defaults(mut self, defaults: fn(&mut Settings)) -> Self {
        self.defaults = Some(defaults);
        self
    }

    /// The service's name, which also prefixes its environment variables.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The service's version.
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// The built-in defaults for this service (ports, SQLite path).
    pub fn default_settings(&self) -> Settings {
        let mut settings = Settings::for_service(self.name, self.api_port);
        if let Some(defaults) = self.defaults {
            defaults(&mut settings);
        }
        settings
    }

    pub(crate) fn openapi(&self) -> Option<fn() -> utoipa::openapi::OpenApi> {
        self.openapi
    }

    pub(crate) fn has_index(&self) -> bool {
        self.index
    }

    pub(crate) async fn build(&self, context: Context<S>) -> Result<Router, StartError> {
        (self.build)(context).await
    }
}

/// What a service's build function receives.
pub struct Context<S = NoServiceSettings> {
    pub(crate) name: &'static str,
    pub(crate) settings: Arc<Settings>,
    pub(crate) service_settings: Arc<S>,
    pub(crate) health: Health,
    pub(crate) backends: Arc<Mutex<Vec<String>>>,
    pub(crate) migrate: bool,
    pub(crate) sessions: crate::shutdown::Sessions,
    pub(crate) budgets: crate::slo::budget::Budgets,
}

impl<S> Context<S> {
    /// The platform's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The service's own sections.
    pub fn service_settings(&self) -> Arc<S> {
        self.service_settings.clone()
    }

    /// The health registry, for services that check dependencies of their own.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The per-client rate limit of `[ratelimit]`, for the service to put its routes behind
    /// (see [`crate::http::ratelimit`]): buckets in this process, or in Redis when
    /// `ratelimit.url` names one (connected now, so a wrong URL fails start-up).
    pub async fn rate_limiter(&self) -> Result<crate::http::ratelimit::RateLimiter, StartError> {
        let settings = &self.settings.ratelimit;
        let namespace = settings.namespace.as_deref().unwrap_or(self.name);
        Ok(crate::http::ratelimit::RateLimiter::connect(
            settings,
            self.settings.server.trusted_proxies.clone(),
            namespace,
        )
        .await?)
    }

    /// The in-process SLO tracker behind `GET /slo`, for services whose ratio SLIs count their
    /// own events ([`Budgets::record_ratio`](crate::slo::budget::Budgets::record_ratio)).
    pub fn budgets(&self) -> &crate::slo::budget::Budgets {
        &self.budgets
    }

    /// The registry of long-lived sessions (WebSockets), told to stop when the listeners stop
    /// accepting and waited for within `shutdown.grace`.
    pub fn sessions(&self) -> &crate::shutdown::Sessions {
        &self.sessions
    }

    /// Opens the append-only log at `storage.url` for `namespace`, keeping the last `retain`
    /// entries per stream, migrating when configured, and registers its health check.
    pub async fn log(
        &self,
        namespace: &str,
        retain: usize,
    ) -> Result<Arc<dyn storage::log::Log>, StartError> {
        let migrate = self.migrate || self.settings.storage.migrate;
        let log = self
            .wait_for_storage(|| {
                storage::log::open_log(&self.settings.storage, namespace, retain, migrate)
            })
            .await?;
        let checked = log.clone();
        self.register_backend(
            log.backend(),
            Arc::new(move || {
                let log = checked.clone();
                Box::pin(async move { log.ping().await.map_err(|error| error.to_string()) })
            }),
        );
        Ok(log)
    }

    /// Opens the broker at `broker.url` with topics under `namespace` and registers its health
    /// check.
    pub async fn pubsub(
        &self,
        namespace: &str,
    ) -> Result<Arc<dyn storage::pubsub::PubSub>, StartError> {
        let options = storage::ConnectOptions::from(&self.settings.storage);
        let broker = self
            .wait_for_storage(|| {
                storage::pubsub::open_pubsub_with(
                    self.settings.broker.url.expose(),
                    namespace,
                    &options,
                )
            })
            .await?;
        let checked = broker.clone();
        self.register_backend(
            broker.backend(),
            Arc::new(move || {
                let broker = checked.clone();
                Box::pin(async move { broker.ping().await.map_err(|error| error.to_string()) })
            }),
        );
        Ok(broker)
    }

    /// Runs `open` until it succeeds, fails for good, or `storage.startup_timeout` has passed:
    /// a backend that is unavailable (still starting, or slow to take a first connection on a
    /// busy machine) is retried with a growing pause (100 ms to 1 s), so services and their
    /// databases can start in any order.
    async fn wait_for_storage<T, F, Fut>(&self, open: F) -> Result<T, StorageError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, StorageError>>,
    {
        let deadline = tokio::time::Instant::now() + self.settings.storage.startup_timeout;
        let mut pause = Duration::from_millis(100);
        loop {
            match open().await {
                Err(error) if error.is_temporary() && tokio::time::Instant::now() < deadline => {
                    tracing::warn!(%error, retry_in = ?pause, "Storage is not available yet; retrying.");
                    tokio::time::sleep(pause.min(deadline - tokio::time::Instant::now())).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                result => return result,
            }
        }
    }

    fn register_backend(&self, backend: &'static str, check: crate::health::CheckFn) {
        if let Ok(mut backends) = self.backends.lock()
            && !backends.iter().any(|known| known == backend)
        {
            backends.push(backend.to_owned());
        }
        self.health.register(backend, "datastore", check);
    }

    /// Opens the SQL database at `storage.url` with the service's own schema, applying
    /// `migrations` (recorded in `<namespace>_migrations`) when configured or when running
    /// `migrate`, and registers its health check.
    pub async fn sql_pool(
        &self,
        namespace: &str,
        migrations: &storage::pool::Migrations,
    ) -> Result<storage::pool::SqlDatabase, StartError> {
        let migrate = self.migrate || self.settings.storage.migrate;
        let database = self
            .wait_for_storage(|| {
                storage::pool::SqlDatabase::open(
                    &self.settings.storage,
                    namespace,
                    migrations,
                    migrate,
                )
            })
            .await?;
        let checked = database.clone();
        self.register_backend(
            database.backend(),
            Arc::new(move || {
                let database = checked.clone();
                Box::pin(async move { database.ping().await.map_err(|error| error.to_string()) })
            }),
        );
        Ok(database)
    }

    /// Whether this start creates or upgrades schemas: `storage.migrate`, or the `migrate`
    /// command. A service's own data migrations run only then.
    pub fn migrates(&self) -> bool {
        self.migrate || self.settings.storage.migrate
    }

    /// Opens the key–value store at `storage.url` for `namespace`, migrating when configured (or
    /// when running `migrate`), and registers its health check.
    pub async fn key_value(&self, namespace: &str) -> Result<Arc<dyn KeyValue>, StartError> {
        let migrate = self.migrate || self.settings.storage.migrate;
        let store = self
            .wait_for_storage(|| {
                storage::open_key_value(&self.settings.storage, namespace, migrate)
            })
            .await?;
        let checked = store.clone();
        self.register_backend(
            store.backend(),
            Arc::new(move || {
                let store = checked.clone();
                Box::pin(async move { store.ping().await.map_err(|error| error.to_string()) })
            }),
        );
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::{Sli, Slo};

    fn demo() -> Service {
        Service::new("demo", "0.1.0", 8089, |_context: Context| async {
            Ok(Router::new())
        })
    }

    #[test]
    fn valid_slos_are_taken() {
        assert_eq!(demo().with_slos(Slo::http_pair(0.1)).slos().len(), 2);
    }

    #[test]
    #[should_panic(
        expected = "service demo: SLO `latency`: latency threshold 0.12s is not a histogram bucket bound"
    )]
    fn an_invalid_slo_is_refused_where_the_service_hands_it_over() {
        let _ = demo().with_slos(Slo::http_pair(0.12));
    }

    #[test]
    #[should_panic(expected = "service demo: two SLOs are named `availability`")]
    fn two_slos_of_one_name_are_refused() {
        let _ = demo().with_slos(vec![
            Slo::new("availability", "a", 0.999, Sli::availability()),
            Slo::new("availability", "b", 0.99, Sli::availability()),
        ]);
    }
}
