//! Every listener's accept loop, plain or TLS: the cap on open connections, the deadline for a
//! request's head, HTTP/2's stream limit, then HTTP/2 or HTTP/1.1 (with upgrades, for
//! WebSockets) on hyper, and the graceful drain.
//!
//! What a hostile client can hold, and for how long:
//! - **Connections**: at most [`ConnectionLimits::max_connections`] per listener. Past it a new
//!   connection is closed at once, before any byte is read or a handshake is made, and counted
//!   in `http_server_refused_connections_total`.
//! - **Time to a first request**: a connection whose first request head (after the TLS handshake,
//!   if any) has not arrived within [`ConnectionLimits::header_read_timeout`] of its accept is
//!   closed and counted in `http_server_header_timeouts_total`. That covers a client that sends
//!   nothing, one that stalls its handshake, and one that sends its head a byte at a time.
//! - **Each later HTTP/1.1 head**: the same deadline, from the moment the previous answer's
//!   last byte was handed over (so it also ends idle keep-alive connections); counted in
//!   `http_server_header_timeouts_total` too. One watchdog per connection keeps both deadlines
//!   ([`head_deadline`]), instead of hyper's timer per request.
//! - **HTTP/2**: at most [`ConnectionLimits::http2_max_streams`] streams at once per connection,
//!   and a keep-alive ping whose answer must come within the same deadline. A stream's body is
//!   bounded by `server.request_timeout`, like any request.
//! - **A body left unread by an early answer**: read and discarded before the answer goes out,
//!   at most [`ConnectionLimits::drain`]'s bytes within the request's time ([`unread_body`]), so
//!   the answer reaches clients that drop one followed by a reset.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::head_deadline::{HeadDeadline, TrackedBody};
use super::unread_body::{self, DrainLimits};
use crate::config::ServerSettings;
use crate::metrics::names::{
    HTTP_HEADER_TIMEOUTS, HTTP_OPEN_CONNECTIONS, HTTP_REFUSED_CONNECTIONS,
};

/// How often an idle HTTP/2 connection is pinged; a peer that does not answer within the
/// header-read deadline is gone.
const HTTP2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);

/// What one listener lets a client hold; from `server.max_connections`,
/// `server.header_read_timeout`, `server.http2_max_streams`, `server.unread_body_drain` and
/// `server.request_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    /// Open connections at once; past it new ones are closed at once.
    pub(crate) max_connections: usize,
    /// Longest time from accept to the first request head, and for each later HTTP/1.1 head.
    pub(crate) header_read_timeout: Duration,
    /// Streams at once on one HTTP/2 connection.
    pub(crate) http2_max_streams: u32,
    /// How much of a body an early answer left unread is read before the answer goes out.
    pub(crate) drain: DrainLimits,
}

impl From<&ServerSettings> for ConnectionLimits {
    fn from(settings: &ServerSettings) -> Self {
        ConnectionLimits {
            max_connections: settings.max_connections.max(1),
            header_read_timeout: settings.header_read_timeout,
            http2_max_streams: settings.http2_max_streams.max(1),
            drain: DrainLimits {
                bytes: settings.unread_body_drain.as_u64(),
                time: settings.request_timeout,
            },
        }
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is set) until `stopped` turns true, then
/// waits for the connections in flight to finish (the caller bounds that wait with
/// `shutdown.grace`). `name` labels the listener's metrics (`api`, `admin`).
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    limits: ConnectionLimits,
    name: &'static str,
    mut stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let builder = builder(&limits);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let open = metrics::gauge!(HTTP_OPEN_CONNECTIONS, "listener" => name);
    let refused = metrics::counter!(HTTP_REFUSED_CONNECTIONS, "listener" => name);
    let header_timeouts = metrics::counter!(HTTP_HEADER_TIMEOUTS, "listener" => name);
    let stop = async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, usually: back off instead of spinning.
                    tracing::warn!(error = %error, "Accepting a connection failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Dropping the stream closes it before anything is read from it.
            refused.increment(1);
            tracing::debug!(%peer, "Connection refused: at the connection limit.");
            continue;
        };
        // Small writes (a WebSocket frame, a short answer) go out at once instead of waiting
        // for the peer's delayed ACK.
        let _ = stream.set_nodelay(true);
        // The slot travels with the socket, so an upgraded connection (a WebSocket, which
        // hyper hands over with the socket) keeps holding it until the socket closes.
        open.increment(1.0);
        let stream = Counted {
            io: stream,
            _slot: Slot {
                _permit: permit,
                open: open.clone(),
            },
        };
        let connection = Connection {
            peer,
            router: router.clone(),
            builder: builder.clone(),
            header_read_timeout: limits.header_read_timeout,
            header_timeouts: header_timeouts.clone(),
            drain: limits.drain,
        };
        let acceptor = acceptor.clone();
        // Taken before the handshake, so the drain also waits for connections still shaking hands.
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            connection.serve(stream, acceptor.as_ref(), watcher).await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// hyper's connection settings for both protocols.
fn builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The head deadline is kept per connection (`head_deadline`), not by hyper per request.
    builder.http1().header_read_timeout(None);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_streams)
        .keep_alive_interval(HTTP2_KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(limits.header_read_timeout);
    builder
}

/// One accepted connection and what serving it needs.
struct Connection {
    peer: SocketAddr,
    router: Router,
    builder: auto::Builder<TokioExecutor>,
    header_read_timeout: Duration,
    header_timeouts: metrics::Counter,
    drain: DrainLimits,
}

impl Connection {
    /// The TLS handshake (if any), then HTTP until the client or the drain ends it. The first
    /// request's head must arrive within the deadline from now, handshake included.
    async fn serve(
        self,
        stream: Counted<tokio::net::TcpStream>,
        tls: Option<&TlsAcceptor>,
        watcher: hyper_util::server::graceful::Watcher,
    ) {
        let accepted = tokio::time::Instant::now();
        let deadline = HeadDeadline::new(accepted, self.header_read_timeout);
        match tls {
            None => self.serve_http(stream, deadline, watcher).await,
            Some(acceptor) => {
                let handshake = tokio::time::timeout_at(
                    accepted + self.header_read_timeout,
                    acceptor.accept(stream),
                )
                .await;
                match handshake {
                    Ok(Ok(stream)) => self.serve_http(stream, deadline, watcher).await,
                    Ok(Err(error)) => {
                        tracing::debug!(peer = %self.peer, error = %error, "TLS handshake failed.");
                    }
                    Err(_) => {
                        self.header_timeouts.increment(1);
                        tracing::debug!(peer = %self.peer, "TLS handshake timed out.");
                    }
                }
            }
        }
    }

    async fn serve_http<I>(
        self,
        io: I,
        deadline: HeadDeadline,
        watcher: hyper_util::server::graceful::Watcher,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            peer,
            router,
            builder,
            header_timeouts,
            drain,
            ..
        } = self;
        let heads = deadline.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            let busy = heads.head_arrived(request.version());
            request.extensions_mut().insert(ConnectInfo(peer));
            // Outside the whole stack, so every answer (a 404, a shed 503, a rate limit's 429)
            // goes out only after the body it left unread, and the stack's timing and metrics
            // are those of the answer, not of the drain.
            let (request, unread) = unread_body::track(request, drain);
            let answer = router.clone().oneshot(request);
            async move {
                let Ok(response) = answer.await;
                unread.read_rest().await;
                Ok::<_, Infallible>(response.map(|body| TrackedBody::new(body, busy)))
            }
        });
        let served = watcher.watch(
            builder
                .serve_connection_with_upgrades(TokioIo::new(io), service)
                .into_owned(),
        );
        let result = tokio::select! {
            result = served => result,
            () = deadline.overdue() => {
                // Dropping the connection closes it.
                header_timeouts.increment(1);
                tracing::debug!(%peer, "No request head within the header-read deadline.");
                return;
            }
        };
        if let Err(error) = result {
            tracing::debug!(%peer, error = %error, "Connection ended with an error.");
        }
    }
}

/// A socket with its place under the connection cap: the permit and the open-connections
/// gauge are given back when the socket is dropped, wherever it went (hyper's connection, or
/// the task of an upgraded WebSocket).
struct Counted<I> {
    io: I,
    _slot: Slot,
}

struct Slot {
    _permit: tokio::sync::OwnedSemaphorePermit,
    open: metrics::Gauge,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.decrement(1.0);
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
