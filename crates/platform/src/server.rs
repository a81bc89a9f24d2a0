//! Builds a service into two bound listeners (API and admin) and drains them on shutdown.
//!
//! Both listeners run the same accept loop ([`connections`]: connection cap, header-read
//! deadline, HTTP/2 limits, drain). TLS, when `tls.enabled`, is on the API listener only; the
//! admin listener is never routed publicly.
//!
//! Binding happens before serving, and the bound addresses are reported, so tests ask for port 0.

mod connections;
mod head_deadline;
mod unread_body;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{self, Info};
use crate::config::Loaded;
use crate::health::Health;
use crate::service::{Context, Service, StartError};

/// The git revision this binary was built from.
pub const REVISION: &str = env!("PLATFORM_GIT_REVISION");

/// A service that is serving. Call [`RunningServer::shutdown`] to drain it.
pub struct RunningServer {
    api_addr: SocketAddr,
    api_scheme: &'static str,
    admin_addr: SocketAddr,
    health: Health,
    info: Info,
    stop: watch::Sender<bool>,
    sessions: crate::shutdown::Sessions,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

/// Runs the service's build function with `migrate` forced on and returns once storage is ready.
pub async fn migrate<S>(service: &Service<S>, loaded: Loaded<S>) -> Result<Vec<String>, StartError>
where
    S: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
{
    let sessions = crate::shutdown::Sessions::default();
    let budgets = crate::slo::budget::Budgets::new(service.slos());
    let (context, backends) = context(
        service.name(),
        loaded,
        Health::default(),
        true,
        sessions,
        budgets,
    );
    let _routes = service.build(context).await?;
    Ok(backends.lock().map(|b| b.clone()).unwrap_or_default())
}

fn context<S>(
    name: &'static str,
    loaded: Loaded<S>,
    health: Health,
    migrate: bool,
    sessions: crate::shutdown::Sessions,
    budgets: crate::slo::budget::Budgets,
) -> (Context<S>, Arc<Mutex<Vec<String>>>) {
    let backends = Arc::new(Mutex::new(Vec::new()));
    let context = Context {
        name,
        settings: Arc::new(loaded.platform),
        service_settings: Arc::new(loaded.service),
        health,
        backends: backends.clone(),
        migrate,
        sessions,
        budgets,
    };
    (context, backends)
}

/// Builds the service, binds both listeners and starts serving.
pub async fn start<S>(service: &Service<S>, loaded: Loaded<S>) -> Result<RunningServer, StartError>
where
    S: Serialize + DeserializeOwned + Default + Send + Sync + 'static,
{
    let prometheus = crate::metrics::install();
    crate::metrics::record_build_info(service.version(), REVISION);
    let settings = loaded.platform.clone();
    let health = Health::default();
    let sessions = crate::shutdown::Sessions::default();
    // One tracker per server: the API stack and the service count into it, the admin port's
    // `/slo` reads it.
    let budgets = crate::slo::budget::Budgets::new(service.slos());
    let (context, backends) = context(
        service.name(),
        loaded,
        health.clone(),
        false,
        sessions.clone(),
        budgets.clone(),
    );
    let mut routes = service.build(context).await?;
    if let Some(openapi) = service.openapi() {
        // The service's document plus the answers the platform gives on every route.
        let document = Arc::new(crate::http::openapi::document(openapi()));
        routes = routes.route(
            "/openapi.json",
            get(move || async move { axum::Json(document.as_ref().clone()) }),
        );
    }
    if service.has_index() {
        let index = Arc::new(serde_json::json!({
            "service": service.name(),
            "version": service.version(),
            "openapi": service.openapi().map(|_| "/openapi.json"),
            "health": "/readyz",
        }));
        routes = routes.route(
            "/",
            get(move || async move { axum::Json(index.as_ref().clone()) }),
        );
    }
    let app = crate::http::stack(routes, &settings.server, health.clone(), budgets.clone());
    let info = Info {
        name: service.name(),
        version: service.version(),
        revision: REVISION,
        backends: backends.lock().map(|b| b.clone()).unwrap_or_default(),
    };
    let admin = admin::router(health.clone(), prometheus.clone(), info.clone(), budgets);

    let tls = if settings.tls.enabled {
        let paths = crate::tls::certificate_paths(service.name(), &settings.tls)?;
        Some(crate::tls::server_config(&paths)?)
    } else {
        None
    };
    let api_listener = bind(settings.server.listen).await?;
    let admin_listener = bind(settings.admin.listen).await?;
    let api_addr = local_addr(&api_listener, settings.server.listen)?;
    let admin_addr = local_addr(&admin_listener, settings.admin.listen)?;

    health
        .spawn_checks(
            settings.health.check_interval,
            settings.health.check_timeout,
        )
        .await;

    let (stop, stopped) = watch::channel(false);
    let limits = connections::ConnectionLimits::from(&settings.server);
    let api_scheme = if tls.is_some() { "https" } else { "http" };
    let api_task = tokio::spawn(connections::serve(
        api_listener,
        tls,
        app,
        limits,
        "api",
        stopped.clone(),
    ));
    let admin_task = tokio::spawn(connections::serve(
        admin_listener,
        None,
        admin,
        limits,
        "admin",
        stopped,
    ));
    let tasks = vec![api_task, admin_task];
    // The exporter keeps histogram samples until upkeep folds them into buckets.
    let upkeep_health = health.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        while !upkeep_health.is_shutting_down() {
            ticker.tick().await;
            prometheus.run_upkeep();
        }
    });
    Ok(RunningServer {
        api_addr,
        api_scheme,
        admin_addr,
        health,
        info,
        stop,
        sessions,
        tasks,
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, StartError> {
    listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })
}

impl RunningServer {
    /// The bound API address (the real port when the configuration said 0).
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// `https` when the API listener serves TLS, else `http`.
    pub fn api_scheme(&self) -> &'static str {
        self.api_scheme
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// What `/info` reports.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The drain sequence: readiness fails at once; listeners keep accepting for `drain_delay`
    /// so load balancers stop routing; then they stop accepting and requests in flight get
    /// until `grace`. Returns `false` when `grace` ran out with requests still in flight.
    pub async fn shutdown(self, drain_delay: Duration, grace: Duration) -> bool {
        self.health.begin_shutdown();
        tracing::info!(?drain_delay, "Shutdown began; readiness now fails.");
        tokio::time::sleep(drain_delay).await;
        let _ = self.stop.send(true);
        // Upgraded connections (WebSockets) are invisible to the listeners' drain: tell their
        // sessions to say goodbye, and wait for them within the same grace.
        self.sessions.stop();
        let sessions = self.sessions.clone();
        let everything = async move {
            let results = futures::future::join_all(self.tasks).await;
            sessions.idle().await;
            results
        };
        let drained = tokio::time::timeout(grace, everything).await;
        match drained {
            Ok(results) => {
                for result in results {
                    if let Ok(Err(error)) = result {
                        tracing::warn!(error = %error, "A listener ended with an error.");
                    }
                }
                tracing::info!("All requests drained.");
                true
            }
            Err(_) => {
                tracing::warn!(
                    ?grace,
                    "Grace period over; dropping requests still in flight."
                );
                false
            }
        }
    }
}
