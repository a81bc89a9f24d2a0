//! The HTTP/1.1 client both loops drive: where to send ([`Endpoint`], plain or TLS), what
//! ([`RequestSpec`]), one keep-alive connection with one request in flight, and the fixtures a
//! run sends before its load.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
use tokio::task::JoinSet;

/// One request, without host: the runner adds `Host` and, for a body, `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    /// The method.
    pub method: Method,
    /// Path and query, origin form (`/hello/alice`).
    pub path: String,
    /// A JSON body, if any.
    pub json_body: Option<Bytes>,
    /// The `Authorization` header, if any (notes' bearer token).
    pub authorization: Option<HeaderValue>,
}

/// A request with no response after this long counts as a `timeout` error and its connection is
/// replaced. Above the platform's default request timeout, so the server answers first.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Pause after a failed connect, so a dead server is not hammered in a tight loop.
pub(crate) const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// Where to send requests.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub(super) addr: SocketAddr,
    host: HeaderValue,
    pub(super) tls: Option<Tls>,
}

/// What a TLS connection needs besides the socket.
#[derive(Debug, Clone)]
pub(super) struct Tls {
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

    pub(crate) fn request(&self, spec: &RequestSpec) -> anyhow::Result<Request<Full<Bytes>>> {
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

/// A worker's first connection, opened before it waits at `barrier` with the others. It waits
/// even when connecting failed, or the others would wait forever; the error comes after.
pub(crate) async fn connect_then_wait(
    endpoint: &Endpoint,
    barrier: &tokio::sync::Barrier,
) -> anyhow::Result<Connection> {
    let connected = Connection::open(endpoint).await;
    barrier.wait().await;
    connected
}

/// The worker's connection, reopened when there is none or the server closed it (a keep-alive
/// that ended is replaced without counting an error); `None` when connecting failed.
pub(crate) async fn reconnected<'a>(
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
pub(crate) async fn send_timed(
    open: &mut Connection,
    request: Request<Full<Bytes>>,
) -> Result<u16, String> {
    match tokio::time::timeout(REQUEST_TIMEOUT, open.send(request)).await {
        Ok(Ok(status)) => Ok(status.as_u16()),
        Ok(Err(error)) => Err(format!("transport: {error}")),
        Err(_elapsed) => Err("timeout".to_owned()),
    }
}

/// Sends `fixtures` over up to `connections` connections; any failure fails the run.
pub(crate) async fn send_fixtures(
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
pub(crate) struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
}

impl Connection {
    /// Connects, shakes hands (TLS, when the endpoint has it) and is ready to send.
    pub(crate) async fn open(endpoint: &Endpoint) -> anyhow::Result<Connection> {
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

    pub(crate) fn is_closed(&self) -> bool {
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
