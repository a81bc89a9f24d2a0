//! The closed-loop HTTP/1.1 runner: `connections` keep-alive connections, each with exactly one
//! request in flight, sending the next as soon as the previous response body has been read.
//! Over plain TCP or, when the endpoint carries a TLS configuration, over TLS.
//!
//! A run has three phases: fixtures (the scenario's setup requests, which must all succeed),
//! warm-up (load, not recorded), and the measured window. A response counts when it completes
//! inside the window; its latency is from writing the request to reading the whole body.
//!
//! [`run_at_rate`] is the open-loop variant the soak uses: requests fall due at a fixed rate
//! whatever the answers, and latency counts from when each was due.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{Barrier, watch};
use tokio::task::JoinSet;

use crate::cpu::CpuMeter;
use crate::scenario::{HttpScenario, RequestSpec, RequestStream};
use crate::summary::{Recording, Summary};

/// A request with no response after this long counts as a `timeout` error and its connection is
/// replaced. Above the platform's default request timeout, so the server answers first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Pause after a failed connect, so a dead server is not hammered in a tight loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// Where to send requests.
#[derive(Debug, Clone)]
pub struct Endpoint {
    addr: SocketAddr,
    host: HeaderValue,
    tls: Option<Tls>,
}

/// What a TLS connection needs besides the socket.
#[derive(Debug, Clone)]
struct Tls {
    config: Arc<rustls::ClientConfig>,
    /// The name the certificate must be valid for (and the SNI, for a DNS name).
    server_name: ServerName<'static>,
}

impl Endpoint {
    /// The server at `addr`, over plain TCP.
    pub fn from_addr(addr: SocketAddr) -> Endpoint {
        let host = HeaderValue::from_str(&addr.to_string())
            .expect("a socket address is a valid header value");
        Endpoint {
            addr,
            host,
            tls: None,
        }
    }

    /// The same server over TLS with `config`, checking the certificate against its IP address.
    pub fn with_tls(self, config: Arc<rustls::ClientConfig>) -> Endpoint {
        let server_name = ServerName::IpAddress(self.addr.ip().into());
        Endpoint {
            tls: Some(Tls {
                config,
                server_name,
            }),
            ..self
        }
    }

    /// The server named by `http://HOST:PORT` or `https://HOST:PORT`, resolved once (the first
    /// address wins). `tls` is required for `https` and refused for `http`.
    pub async fn from_url(
        url: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> anyhow::Result<Endpoint> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("`{url}` is not a URL"))?;
        let default_port = match (uri.scheme_str(), &tls) {
            (Some("http"), None) => 80,
            (Some("https"), Some(_)) => 443,
            (Some("http"), Some(_)) => bail!("`{url}`: a certificate is for https:// URLs only"),
            (Some("https"), None) => {
                bail!("`{url}`: an https:// URL needs the certificate to trust (--ca-cert)")
            }
            _ => bail!("`{url}`: only http:// and https:// URLs are supported"),
        };
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            bail!("`{url}`: give the server only (http://HOST:PORT); scenarios choose the paths");
        }
        let authority = uri
            .authority()
            .with_context(|| format!("`{url}` has no host"))?;
        // `[::1]` in a URL is the address `::1`.
        let host_name = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(default_port);
        let addr = tokio::net::lookup_host((host_name, port))
            .await
            .with_context(|| format!("cannot resolve `{host_name}`"))?
            .next()
            .with_context(|| format!("`{host_name}` resolves to no address"))?;
        let host = HeaderValue::from_str(authority.as_str())
            .with_context(|| format!("`{authority}` is not a valid Host header"))?;
        let tls = match tls {
            Some(config) => {
                let server_name = ServerName::try_from(host_name.to_owned())
                    .with_context(|| format!("`{host_name}` is not a TLS server name"))?;
                Some(Tls {
                    config,
                    server_name,
                })
            }
            None => None,
        };
        Ok(Endpoint { addr, host, tls })
    }

    /// A request to this server with `Host` set; the caller adds the rest.
    pub fn builder(&self, method: Method, path: &str) -> hyper::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone())
    }

    /// Sends `request` on a connection of its own and reads the whole response: for setup steps
    /// that need headers or body (a sign-up), never for load.
    pub async fn exchange(&self, request: Request<Full<Bytes>>) -> anyhow::Result<Reply> {
        let what = format!("{} {}", request.method(), request.uri());
        let mut connection = Connection::open(self).await?;
        tokio::time::timeout(REQUEST_TIMEOUT, connection.send_whole(request))
            .await
            .with_context(|| format!("{what}: no answer within {REQUEST_TIMEOUT:?}"))?
            .with_context(|| what)
    }

    fn request(&self, spec: &RequestSpec) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut builder = self.builder(spec.method.clone(), &spec.path);
        if let Some(authorization) = &spec.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        let body = match &spec.json_body {
            Some(body) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                body.clone()
            }
            None => Bytes::new(),
        };
        builder
            .body(Full::new(body))
            .with_context(|| format!("cannot build {} {}", spec.method, spec.path))
    }
}

/// A response read whole, by [`Endpoint::exchange`].
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// The shape of a run.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Concurrent connections, one request in flight on each.
    pub connections: usize,
    /// Load before the measured window, not recorded.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
}

/// Sends the scenario's fixtures, then loads `endpoint` for `load.warmup + load.duration`.
/// The CPU time each of `meters` used in the measured window goes into the summary.
pub async fn run(
    endpoint: &Endpoint,
    scenario: &dyn HttpScenario,
    load: Load,
    meters: &[CpuMeter],
) -> anyhow::Result<Summary> {
    if load.connections == 0 {
        bail!("--connections must be at least 1");
    }
    send_fixtures(endpoint, scenario.fixtures(), load.connections)
        .await
        .context("fixtures failed")?;

    // Every connection is open before the clock starts, so connecting is not measured.
    let barrier = Arc::new(Barrier::new(load.connections + 1));
    let (timeline_tx, timeline_rx) = watch::channel(None::<Timeline>);
    let mut workers = JoinSet::new();
    for connection_idx in 0..load.connections {
        workers.spawn(worker(
            endpoint.clone(),
            scenario.stream(connection_idx),
            barrier.clone(),
            timeline_rx.clone(),
        ));
    }
    barrier.wait().await;
    let measure_from = Instant::now() + load.warmup;
    let measure_until = measure_from + load.duration;
    timeline_tx.send_replace(Some(Timeline {
        measure_from,
        measure_until,
    }));
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_from: Vec<_> = meters.iter().map(CpuMeter::read).collect();
    tokio::time::sleep_until(measure_until.into()).await;
    let cpu_until: Vec<_> = meters.iter().map(CpuMeter::read).collect();

    let mut total = Recording::default();
    while let Some(joined) = workers.join_next().await {
        let recording = joined.context("a load worker panicked")??;
        total.merge(&recording);
    }
    let mut summary = Summary::new(&total, load.duration);
    for ((meter, from), until) in meters.iter().zip(cpu_from).zip(cpu_until) {
        if let (Some(from), Some(until)) = (from, until) {
            let used = until.saturating_sub(from).as_secs_f64();
            summary.cpu_seconds.insert(meter.name.clone(), used);
        }
    }
    Ok(summary)
}

/// When the measured window opens and closes; the load stops when it closes.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    measure_from: Instant,
    measure_until: Instant,
}

impl Timeline {
    fn measures(&self, completed: Instant) -> bool {
        completed >= self.measure_from && completed < self.measure_until
    }
}

async fn worker(
    endpoint: Endpoint,
    mut stream: Box<dyn RequestStream>,
    barrier: Arc<Barrier>,
    mut timeline_rx: watch::Receiver<Option<Timeline>>,
) -> anyhow::Result<Recording> {
    // Wait at the barrier even when connecting failed, or the others would wait forever.
    let connected = Connection::open(&endpoint).await;
    barrier.wait().await;
    let mut connection = Some(connected?);
    let timeline = timeline_rx
        .wait_for(Option::is_some)
        .await
        .context("the run ended before it started")?
        .context("the timeline is set before it is announced")?;

    let mut recording = Recording::default();
    while Instant::now() < timeline.measure_until {
        let request = endpoint.request(&stream.next_request())?;
        let Some(open) = reconnected(&endpoint, &mut connection).await else {
            if timeline.measures(Instant::now()) {
                recording.failure("connect".to_owned());
            }
            tokio::time::sleep(RECONNECT_PAUSE).await;
            continue;
        };
        let started = Instant::now();
        let outcome = send_timed(open, request).await;
        let completed = Instant::now();
        if outcome.is_err() {
            connection = None;
        }
        if timeline.measures(completed) {
            match outcome {
                Ok(status) => recording.response(status, completed - started),
                Err(kind) => recording.failure(kind),
            }
        }
    }
    Ok(recording)
}

/// The worker's connection, reopened when there is none or the server closed it (a keep-alive
/// that ended is replaced without counting an error); `None` when connecting failed.
async fn reconnected<'a>(
    endpoint: &Endpoint,
    connection: &'a mut Option<Connection>,
) -> Option<&'a mut Connection> {
    if connection.as_ref().is_some_and(Connection::is_closed) {
        *connection = None;
    }
    if connection.is_none() {
        *connection = Some(Connection::open(endpoint).await.ok()?);
    }
    connection.as_mut()
}

/// Sends `request` within [`REQUEST_TIMEOUT`]: its status, or the failure as recorded
/// (`transport: …`, `timeout`). After a failure the connection's state is unknown: the caller
/// drops it.
async fn send_timed(open: &mut Connection, request: Request<Full<Bytes>>) -> Result<u16, String> {
    match tokio::time::timeout(REQUEST_TIMEOUT, open.send(request)).await {
        Ok(Ok(status)) => Ok(status.as_u16()),
        Ok(Err(error)) => Err(format!("transport: {error}")),
        Err(_elapsed) => Err("timeout".to_owned()),
    }
}

/// The shape of an open-loop run.
#[derive(Debug, Clone, Copy)]
pub struct RateLoad {
    /// Connections, each with at most one request in flight: the most requests outstanding.
    pub connections: usize,
    /// Requests offered per second.
    pub rate: f64,
    /// How long requests fall due.
    pub duration: Duration,
}

/// How long after the end requests that fell due but were not sent yet may still go out; the
/// rest count as `unsent` errors (the server could not keep up with the rate).
const UNSENT_GRACE: Duration = Duration::from_secs(1);

/// Sends the scenario's fixtures, opens the connections, then offers `load.rate` requests per
/// second for `load.duration`: request `k` falls due at `start + k / rate` and goes out on the
/// first free connection. Its latency counts from when it fell due, not from when it left, so a
/// server that falls behind shows in latency instead of slowing the offered load. A response
/// counts as a success when `accept(status)`.
///
/// `each_second(elapsed)` is called at the start and then every second until the end, so the
/// caller can sample the server (its memory). The CPU time of `meters` over the run goes into
/// the summary.
pub async fn run_at_rate(
    endpoint: &Endpoint,
    scenario: &dyn HttpScenario,
    load: RateLoad,
    meters: &[CpuMeter],
    accept: fn(u16) -> bool,
    each_second: &mut dyn FnMut(Duration),
) -> anyhow::Result<Summary> {
    if load.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if !(load.rate.is_finite() && load.rate > 0.0) {
        bail!("the rate must be a positive number of requests per second");
    }
    send_fixtures(endpoint, scenario.fixtures(), load.connections)
        .await
        .context("fixtures failed")?;
    let due_slots = slots_due(load.rate, load.duration);
    let barrier = Arc::new(Barrier::new(load.connections + 1));
    let (schedule_tx, schedule_rx) = watch::channel(None::<RateSchedule>);
    let next_slot = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for connection_idx in 0..load.connections {
        workers.spawn(rate_worker(
            endpoint.clone(),
            scenario.stream(connection_idx),
            barrier.clone(),
            schedule_rx.clone(),
            next_slot.clone(),
            accept,
        ));
    }
    barrier.wait().await;
    let start = Instant::now() + Duration::from_millis(10);
    let schedule = RateSchedule {
        start,
        rate: load.rate,
        slots: due_slots,
        send_until: start + load.duration + UNSENT_GRACE,
    };
    schedule_tx.send_replace(Some(schedule));
    tokio::time::sleep_until(start.into()).await;
    let cpu_from: Vec<_> = meters.iter().map(CpuMeter::read).collect();
    each_second(Duration::ZERO);
    let mut second = 1;
    while Duration::from_secs(second) <= load.duration {
        tokio::time::sleep_until((start + Duration::from_secs(second)).into()).await;
        each_second(Duration::from_secs(second));
        second += 1;
    }
    tokio::time::sleep_until((start + load.duration).into()).await;
    let cpu_until: Vec<_> = meters.iter().map(CpuMeter::read).collect();

    let mut total = Recording::default();
    while let Some(joined) = workers.join_next().await {
        let recording = joined.context("a load worker panicked")??;
        total.merge(&recording);
    }
    let answered = total.requests();
    for _ in answered..due_slots {
        total.failure("unsent".to_owned());
    }
    let mut summary = Summary::new(&total, load.duration);
    for ((meter, from), until) in meters.iter().zip(cpu_from).zip(cpu_until) {
        if let (Some(from), Some(until)) = (from, until) {
            let used = until.saturating_sub(from).as_secs_f64();
            summary.cpu_seconds.insert(meter.name.clone(), used);
        }
    }
    Ok(summary)
}

/// Requests due in `duration` at `rate` per second: slots `k` with `k / rate < duration`.
pub fn slots_due(rate: f64, duration: Duration) -> u64 {
    (duration.as_secs_f64() * rate).ceil() as u64
}

/// When each request of an open-loop run falls due.
#[derive(Debug, Clone, Copy)]
struct RateSchedule {
    start: Instant,
    rate: f64,
    /// Requests due in the run.
    slots: u64,
    /// No request leaves after this.
    send_until: Instant,
}

impl RateSchedule {
    fn due(&self, slot: u64) -> Instant {
        self.start + Duration::from_secs_f64(slot as f64 / self.rate)
    }
}

async fn rate_worker(
    endpoint: Endpoint,
    mut stream: Box<dyn RequestStream>,
    barrier: Arc<Barrier>,
    mut schedule_rx: watch::Receiver<Option<RateSchedule>>,
    next_slot: Arc<AtomicU64>,
    accept: fn(u16) -> bool,
) -> anyhow::Result<Recording> {
    let connected = Connection::open(&endpoint).await;
    barrier.wait().await;
    let mut connection = Some(connected?);
    let schedule = schedule_rx
        .wait_for(Option::is_some)
        .await
        .context("the run ended before it started")?
        .context("the schedule is set before it is announced")?;

    let mut recording = Recording::default();
    loop {
        let slot = next_slot.fetch_add(1, Ordering::Relaxed);
        if slot >= schedule.slots {
            break;
        }
        let due = schedule.due(slot);
        tokio::time::sleep_until(due.into()).await;
        if Instant::now() >= schedule.send_until {
            // Too late: the run counts this slot and the ones after it as unsent.
            break;
        }
        let request = endpoint.request(&stream.next_request())?;
        let Some(open) = reconnected(&endpoint, &mut connection).await else {
            recording.failure("connect".to_owned());
            tokio::time::sleep(RECONNECT_PAUSE).await;
            continue;
        };
        match send_timed(open, request).await {
            Ok(status) => recording.response_if(accept(status), status, due.elapsed()),
            Err(kind) => {
                recording.failure(kind);
                connection = None;
            }
        }
    }
    Ok(recording)
}

/// Sends `fixtures` over up to `connections` connections; any failure fails the run.
async fn send_fixtures(
    endpoint: &Endpoint,
    fixtures: Vec<RequestSpec>,
    connections: usize,
) -> anyhow::Result<()> {
    if fixtures.is_empty() {
        return Ok(());
    }
    let per_connection = fixtures.len().div_ceil(connections);
    let mut senders = JoinSet::new();
    for chunk in fixtures.chunks(per_connection) {
        let requests = chunk
            .iter()
            .map(|spec| Ok((spec.clone(), endpoint.request(spec)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let endpoint = endpoint.clone();
        senders.spawn(async move {
            let mut connection = Connection::open(&endpoint).await?;
            for (spec, request) in requests {
                let status = connection
                    .send(request)
                    .await
                    .with_context(|| format!("{} {}", spec.method, spec.path))?;
                if !status.is_success() {
                    bail!("{} {} answered {status}", spec.method, spec.path);
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = senders.join_next().await {
        joined.context("a fixture sender panicked")??;
    }
    Ok(())
}

/// One HTTP/1.1 keep-alive connection.
struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
}

impl Connection {
    /// Connects, shakes hands (TLS, when the endpoint has it) and is ready to send.
    async fn open(endpoint: &Endpoint) -> anyhow::Result<Connection> {
        let addr = endpoint.addr;
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        // Requests are small single writes; Nagle would only add delay.
        tcp.set_nodelay(true).context("cannot set TCP_NODELAY")?;
        match &endpoint.tls {
            None => Connection::handshake(tcp, addr).await,
            Some(tls) => {
                let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                let stream = connector
                    .connect(tls.server_name.clone(), tcp)
                    .await
                    .with_context(|| format!("TLS handshake with {addr} failed"))?;
                Connection::handshake(stream, addr).await
            }
        }
    }

    async fn handshake<S>(stream: S, addr: SocketAddr) -> anyhow::Result<Connection>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .with_context(|| format!("HTTP/1.1 handshake with {addr} failed"))?;
        // The driver ends when the sender is dropped or the server closes the connection.
        tokio::spawn(async move {
            let _ = driver.await;
        });
        Ok(Connection { sender })
    }

    fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends `request` and reads the whole response body.
    async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<StatusCode, hyper::Error> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        Ok(status)
    }

    /// Sends `request` and keeps the whole response.
    async fn send_whole(&mut self, request: Request<Full<Bytes>>) -> Result<Reply, hyper::Error> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Account, Kind, Service};
    use crate::target::ScratchDir;

    /// The baseline serving TLS on a free port with a certificate generated into `dir` as
    /// `name.crt`; returns its address and the certificate.
    async fn tls_baseline(dir: &std::path::Path, name: &str) -> (SocketAddr, std::path::PathBuf) {
        let paths = crate::baseline::self_signed(dir, name).expect("certificate");
        let config = platform::tls::server_config(&paths).expect("server config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(crate::baseline::serve_tls(
            listener,
            config,
            crate::baseline::router(),
        ));
        (addr, paths.cert)
    }

    fn short_load() -> Load {
        Load {
            connections: 2,
            warmup: Duration::from_millis(50),
            duration: Duration::from_millis(300),
        }
    }

    #[tokio::test]
    async fn messages_scenarios_run_over_tls_against_the_baseline() {
        let scratch = ScratchDir::new("loadgen-http-test").expect("scratch dir");
        let (addr, cert) = tls_baseline(scratch.path(), "baseline").await;
        let tls = crate::tls::client_config(&cert).expect("client config");
        let endpoints = [
            Endpoint::from_addr(addr).with_tls(tls.clone()),
            Endpoint::from_url(&format!("https://localhost:{}", addr.port()), Some(tls))
                .await
                .expect("an https URL"),
        ];
        for endpoint in endpoints {
            for &kind in Service::Messages.kinds() {
                let scenario = Service::Messages
                    .scenario(kind, 20, &Account::default())
                    .expect("scenario");
                let summary = run(&endpoint, scenario.as_ref(), short_load(), &[])
                    .await
                    .expect("a run");
                assert_eq!(summary.errors, 0, "{kind:?}: {:?}", summary.error_kinds);
                assert!(summary.requests > 0, "{kind:?} sent nothing");
            }
        }
    }

    /// A plain server of `router` on a free port.
    async fn plain(router: axum::Router) -> Endpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Endpoint::from_addr(addr)
    }

    #[tokio::test]
    async fn an_open_loop_run_sends_the_rate_and_calls_back_every_second() {
        let endpoint = plain(crate::baseline::router()).await;
        let scenario = Service::Hello
            .scenario(Kind::Mix, 20, &Account::default())
            .expect("scenario");
        let load = RateLoad {
            connections: 4,
            rate: 400.0,
            duration: Duration::from_millis(2500),
        };
        let mut seconds = Vec::new();
        let summary = run_at_rate(
            &endpoint,
            scenario.as_ref(),
            load,
            &[],
            |status| (200..400).contains(&status),
            &mut |elapsed| seconds.push(elapsed.as_secs()),
        )
        .await
        .expect("a run");
        assert_eq!(summary.errors, 0, "{:?}", summary.error_kinds);
        // Exactly the slots due in 2.5 s at 400/s, each answered once.
        assert_eq!(summary.requests, 1000);
        assert!((summary.rps - 400.0).abs() < 1e-9, "{}", summary.rps);
        assert_eq!(seconds, [0, 1, 2]);
    }

    #[tokio::test]
    async fn requests_a_slow_server_never_gets_count_as_unsent() {
        let slow = axum::Router::new().route(
            "/hello/{username}",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                "slow"
            })
            .put(|| async { axum::http::StatusCode::NO_CONTENT }),
        );
        let endpoint = plain(slow).await;
        let scenario = Service::Hello
            .scenario(Kind::Get, 1, &Account::default())
            .expect("scenario");
        // One connection answers about 10 GETs a second; 100 fall due in a second, and the
        // grace after the end lets about 10 more out.
        let load = RateLoad {
            connections: 1,
            rate: 100.0,
            duration: Duration::from_secs(1),
        };
        let summary = run_at_rate(
            &endpoint,
            scenario.as_ref(),
            load,
            &[],
            |status| (200..300).contains(&status),
            &mut |_| {},
        )
        .await
        .expect("a run");
        assert_eq!(summary.requests, 100);
        let unsent = summary.error_kinds.get("unsent").copied().unwrap_or(0);
        assert!((60..=90).contains(&unsent), "{:?}", summary.error_kinds);
        assert_eq!(summary.errors, unsent);
        // Latency counts from when a request fell due, so the backlog shows: the last ones
        // sent waited over a second.
        assert!(summary.max_ms > 1000.0, "max {} ms", summary.max_ms);
    }

    #[tokio::test]
    async fn a_server_with_another_certificate_is_refused() {
        let scratch = ScratchDir::new("loadgen-http-test").expect("scratch dir");
        let (addr, _cert) = tls_baseline(scratch.path(), "server").await;
        let stranger = crate::baseline::self_signed(scratch.path(), "stranger").expect("cert");
        let tls = crate::tls::client_config(&stranger.cert).expect("client config");
        let endpoint = Endpoint::from_addr(addr).with_tls(tls);
        let scenario = Service::Messages
            .scenario(Kind::Post, 1, &Account::default())
            .expect("scenario");
        let error = run(&endpoint, scenario.as_ref(), short_load(), &[])
            .await
            .expect_err("an untrusted certificate");
        assert!(format!("{error:#}").contains("TLS handshake"), "{error:#}");
    }

    #[tokio::test]
    async fn urls_choose_plain_or_tls() {
        let scratch = ScratchDir::new("loadgen-http-test").expect("scratch dir");
        let cert = crate::baseline::self_signed(scratch.path(), "demo").expect("cert");
        let tls = crate::tls::client_config(&cert.cert).expect("client config");
        let plain = Endpoint::from_url("http://127.0.0.1:8081", None)
            .await
            .expect("http");
        assert!(plain.tls.is_none());
        let secure = Endpoint::from_url("https://[::1]", Some(tls.clone()))
            .await
            .expect("https");
        assert_eq!(secure.addr, "[::1]:443".parse().expect("address"));
        assert!(secure.tls.is_some());
        for (url, tls) in [
            ("https://127.0.0.1:8082", None),
            ("http://127.0.0.1:8081", Some(tls.clone())),
            ("ftp://127.0.0.1", None),
            ("https://127.0.0.1:8082/messages", Some(tls)),
        ] {
            assert!(Endpoint::from_url(url, tls).await.is_err(), "{url}");
        }
    }
}
