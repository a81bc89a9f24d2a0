//! The closed-loop HTTP/1.1 runner: `connections` keep-alive connections, each with exactly one
//! request in flight, sending the next as soon as the previous response body has been read.
//! Over plain TCP or, when the endpoint carries a TLS configuration, over TLS.
//!
//! A run has three phases: fixtures (the scenario's setup requests, which must all succeed),
//! warm-up (load, not recorded), and the measured window. A response counts when it completes
//! inside the window; its latency is from writing the request to reading the whole body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, StatusCode, Uri};
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

    fn request(&self, spec: &RequestSpec) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder()
            .method(spec.method.clone())
            .uri(spec.path.as_str())
            .header(HOST, self.host.clone());
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
        // A connection the server closed (keep-alive ended) is replaced without counting an error.
        if connection.as_ref().is_some_and(Connection::is_closed) {
            connection = None;
        }
        let open = match connection.as_mut() {
            Some(open) => open,
            None => match Connection::open(&endpoint).await {
                Ok(open) => connection.insert(open),
                Err(_) => {
                    if timeline.measures(Instant::now()) {
                        recording.failure("connect".to_owned());
                    }
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        let started = Instant::now();
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, open.send(request)).await;
        let completed = Instant::now();
        let measured = timeline.measures(completed);
        match outcome {
            Ok(Ok(status)) => {
                if measured {
                    recording.response(status.as_u16(), completed - started);
                }
            }
            Ok(Err(error)) => {
                if measured {
                    recording.failure(format!("transport: {error}"));
                }
                connection = None;
            }
            Err(_elapsed) => {
                if measured {
                    recording.failure("timeout".to_owned());
                }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Kind, Service};
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
                let scenario = Service::Messages.scenario(kind, 20).expect("scenario");
                let summary = run(&endpoint, scenario.as_ref(), short_load(), &[])
                    .await
                    .expect("a run");
                assert_eq!(summary.errors, 0, "{kind:?}: {:?}", summary.error_kinds);
                assert!(summary.requests > 0, "{kind:?} sent nothing");
            }
        }
    }

    #[tokio::test]
    async fn a_server_with_another_certificate_is_refused() {
        let scratch = ScratchDir::new("loadgen-http-test").expect("scratch dir");
        let (addr, _cert) = tls_baseline(scratch.path(), "server").await;
        let stranger = crate::baseline::self_signed(scratch.path(), "stranger").expect("cert");
        let tls = crate::tls::client_config(&stranger.cert).expect("client config");
        let endpoint = Endpoint::from_addr(addr).with_tls(tls);
        let scenario = Service::Messages.scenario(Kind::Post, 1).expect("scenario");
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
