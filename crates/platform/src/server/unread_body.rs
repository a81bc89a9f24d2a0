//! Answers given before the request body was read — a 415 from an extractor, a 401 or 429 from
//! a route layer, a 404, a 503 from load shedding or the timeout — still reach the client.
//!
//! Over HTTP/2, h2 ends a stream whose response is complete while the request body is still
//! open and no longer wanted with RST_STREAM(NO_ERROR), as RFC 9113 §8.1 allows. curl (7.88,
//! nghttp2), some browsers and proxies then drop the answer they were given when they were
//! still uploading. Over HTTP/1.1 hyper closes the connection instead, and a client still
//! sending can get a TCP reset that discards the answer from its receive buffer.
//!
//! So the rest of an unread body is kept, not dropped, and the answer waits until the body has
//! been read to its end and discarded, as if the handler had read it. Only the whole answer
//! after the body works with curl 7.88: sent its head early, curl stops uploading, ends its
//! stream short of its `Content-Length`, and h2 resets the stream with PROTOCOL_ERROR before
//! the answer's end. Reading is bounded, like Go's `net/http`:
//! - **bytes**: at most `server.unread_body_drain` bytes are read after the answer is ready; a
//!   body that declares more (`Content-Length`) is not read at all;
//! - **time**: until the request's `server.request_timeout`, counted from its arrival, the same
//!   bound as for a handler waiting on a body that never comes.
//!
//! Past either bound the body is dropped and the answer goes out: only a client that keeps
//! sending then gets the reset (HTTP/2) or the closed connection (HTTP/1.1) after it. An
//! HTTP/1.1 client that asked for `100 Continue` and was never told to send is not waited for:
//! it sends no body.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How much of an unread body is read before an answer goes out: from `server.unread_body_drain`
/// and `server.request_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DrainLimits {
    /// Bytes read at most after the answer is ready.
    pub(crate) bytes: u64,
    /// From the request's arrival to the end of the drain.
    pub(crate) time: Duration,
}

/// Hands the request to the router with a body that gives back what it did not read, and
/// returns the side that collects it.
pub(crate) fn track(
    request: hyper::Request<Incoming>,
    limits: DrainLimits,
) -> (hyper::Request<RequestBody>, Unread) {
    // A request without a body (every GET) costs nothing here.
    if request.body().is_end_stream() || limits.bytes == 0 {
        let request = request.map(|body| RequestBody {
            inner: Some(body),
            rest: None,
            polled: false,
        });
        return (request, Unread { rest: None });
    }
    let expects_continue = request
        .headers()
        .get(http::header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (sender, receiver) = oneshot::channel();
    let request = request.map(|body| RequestBody {
        inner: Some(body),
        rest: Some(sender),
        polled: false,
    });
    let unread = Unread {
        rest: Some(Waiting {
            receiver,
            expects_continue,
            deadline: Instant::now() + limits.time,
            bytes: limits.bytes,
        }),
    };
    (request, unread)
}

/// A request body as the router sees it. Dropped before its end, it hands the rest to
/// [`Unread`].
pub(crate) struct RequestBody {
    inner: Option<Incoming>,
    rest: Option<oneshot::Sender<Rest>>,
    polled: bool,
}

/// What was left of a request body when the router let go of it.
struct Rest {
    body: Incoming,
    /// Whether anything read it: an HTTP/1.1 `100 Continue` has been sent if it was asked for.
    polled: bool,
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        this.polled = true;
        let frame = ready!(Pin::new(inner).poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) {
            // Ended, or broken: nothing is left to read.
            this.rest = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        if let (Some(rest), Some(body)) = (self.rest.take(), self.inner.take())
            && !body.is_end_stream()
        {
            // Nobody waits when the answer went out without a drain; the body just drops.
            let _ = rest.send(Rest {
                body,
                polled: self.polled,
            });
        }
    }
}

/// The server's side of [`track`]: reads what the router left of the body before the answer
/// goes out.
pub(crate) struct Unread {
    rest: Option<Waiting>,
}

struct Waiting {
    receiver: oneshot::Receiver<Rest>,
    expects_continue: bool,
    deadline: Instant,
    bytes: u64,
}

impl Unread {
    /// Reads and discards the rest of the request body, if the router left any, within the
    /// limits; returns at once when there is none. Past a limit the rest is dropped unread.
    pub(crate) async fn read_rest(self) {
        let Some(mut waiting) = self.rest else {
            return;
        };
        // Still held (a handler kept the body in a task of its own): not ours to read.
        let Ok(mut rest) = waiting.receiver.try_recv() else {
            return;
        };
        if waiting.expects_continue && !rest.polled {
            return;
        }
        if rest.body.size_hint().lower() > waiting.bytes {
            // Declared past the bound: reading part of it would only delay the reset.
            return;
        }
        let mut left = waiting.bytes;
        let read = async {
            // Ends with the body, or at its first error (a reset, a closed connection).
            while let Some(Ok(frame)) = rest.body.frame().await {
                let read = frame.data_ref().map_or(0, |data| {
                    u64::try_from(data.remaining()).unwrap_or(u64::MAX)
                });
                match left.checked_sub(read) {
                    Some(still) => left = still,
                    None => return,
                }
            }
        };
        let _ = tokio::time::timeout_at(waiting.deadline, read).await;
    }
}
