//! `server.header_read_timeout` for every request head of a connection, kept with one timer per
//! connection rather than one per request.
//!
//! hyper's own HTTP/1.1 header-read timeout allocates a timer, registers it in tokio's timer
//! wheel and cancels it again for every keep-alive request (about 1,300 instructions of a
//! 30,000-instruction `GET`). The deadline only matters while the connection waits for a head,
//! so here each connection keeps one word of state, which its requests update with plain atomic
//! operations, and one sleeping watchdog that looks at that word when its time comes:
//!
//! - a request is *busy* from the moment hyper hands over its head until hyper has taken the
//!   last byte of its answer (the response body is dropped): no deadline runs, the request's
//!   own `server.request_timeout` governs;
//! - when the last busy request ends, the connection is *idle* and the time is stamped; the
//!   next head must arrive within the deadline of that stamp. At accept, the connection is idle
//!   from the accept, so the first head (and a TLS handshake before it) has the same deadline;
//! - once a request arrives over HTTP/2 the watchdog stands down: HTTP/2's keep-alive ping
//!   decides when an idle connection is gone, and a slow stream's head is bounded by the
//!   stream's own request timeout.
//!
//! A connection is only ever cut while no request is busy on it: the watchdog swaps the state
//! from "idle since T" to "closed" in one compare-and-swap, which fails if a head arrived in
//! between. So the deadline never cuts a request that has begun, only a head that is late.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::Version;
use http_body::{Frame, SizeHint};
use tokio::time::Instant;

/// Busy requests, in the low bits of the state word.
const BUSY_BITS: u32 = 24;
const BUSY_MASK: u64 = (1 << BUSY_BITS) - 1;
/// Set once a request arrived over HTTP/2.
const HTTP2: u64 = 1 << 62;
/// Set by the watchdog when it cuts the connection.
const CLOSED: u64 = 1 << 63;
/// The idle stamp, in milliseconds since the accept, in the bits between.
const STAMP_MASK: u64 = !(BUSY_MASK | HTTP2 | CLOSED);

/// One connection's head deadline: cheap to clone into each request, shared with the watchdog.
#[derive(Clone)]
pub(crate) struct HeadDeadline {
    shared: Arc<Shared>,
}

struct Shared {
    accepted: Instant,
    timeout: Duration,
    /// Busy count, idle stamp and flags, in one word so the watchdog reads them together.
    state: AtomicU64,
}

impl HeadDeadline {
    /// A connection accepted at `accepted`, idle (waiting for its first head) from then.
    pub(crate) fn new(accepted: Instant, timeout: Duration) -> HeadDeadline {
        HeadDeadline {
            shared: Arc::new(Shared {
                accepted,
                timeout,
                state: AtomicU64::new(0),
            }),
        }
    }

    /// A head has arrived: the connection is busy until the returned guard is dropped (carry it
    /// in the response body, [`TrackedBody::new`]). Over HTTP/2 the watchdog stands down instead and
    /// no guard is needed.
    pub(crate) fn head_arrived(&self, version: Version) -> Option<Busy> {
        if version == Version::HTTP_2 {
            self.shared.state.fetch_or(HTTP2, Ordering::AcqRel);
            return None;
        }
        self.shared.state.fetch_add(1, Ordering::AcqRel);
        Some(Busy {
            shared: self.shared.clone(),
        })
    }

    /// Completes when a head is overdue: the connection has been idle (no busy request) for the
    /// whole deadline. The caller then drops the connection. Never completes on HTTP/2.
    pub(crate) async fn overdue(&self) {
        let shared = &*self.shared;
        let mut wake = shared.accepted + shared.timeout;
        loop {
            tokio::time::sleep_until(wake).await;
            let state = shared.state.load(Ordering::Acquire);
            if state & HTTP2 != 0 {
                return std::future::pending().await;
            }
            let now = Instant::now();
            if state & BUSY_MASK != 0 {
                // Looked at again a deadline from now; the request's own timeout runs meanwhile.
                wake = now + shared.timeout;
                continue;
            }
            let idle_since = shared.accepted + Duration::from_millis(stamp(state));
            let due = idle_since + shared.timeout;
            if due > now {
                wake = due;
                continue;
            }
            // Only if no head arrived since the load: a request that has begun is never cut.
            if shared
                .state
                .compare_exchange(state, state | CLOSED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return;
            }
            wake = now;
        }
    }
}

fn stamp(state: u64) -> u64 {
    (state & STAMP_MASK) >> BUSY_BITS
}

/// A request in progress on its connection; dropping the last one makes the connection idle.
pub(crate) struct Busy {
    shared: Arc<Shared>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let shared = &*self.shared;
        let since = u64::try_from((Instant::now() - shared.accepted).as_millis()).unwrap_or(0);
        let since = (since << BUSY_BITS) & STAMP_MASK;
        let mut state = shared.state.load(Ordering::Acquire);
        loop {
            let busy = state & BUSY_MASK;
            let next = if busy == 1 {
                // The last one: the connection is idle from now.
                (state & (HTTP2 | CLOSED)) | since
            } else {
                state - 1
            };
            match shared.state.compare_exchange_weak(
                state,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => state = actual,
            }
        }
    }
}

/// A response body that keeps its request busy until it is dropped.
pub(crate) struct TrackedBody {
    body: Body,
    _busy: Option<Busy>,
}

impl TrackedBody {
    /// Keeps the request busy until hyper drops the body, that is until the answer's last byte
    /// has been handed over (or the connection ended).
    pub(crate) fn new(body: Body, busy: Option<Busy>) -> TrackedBody {
        TrackedBody { body, _busy: busy }
    }
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    /// Whether `overdue` completes by the time the paused clock reaches `after` past the accept.
    async fn overdue_by(deadline: &HeadDeadline, after: Duration) -> bool {
        let at = deadline.shared.accepted + after;
        tokio::select! {
            () = deadline.overdue() => true,
            () = tokio::time::sleep_until(at) => false,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_head_is_due_a_deadline_after_the_accept() {
        let deadline = HeadDeadline::new(Instant::now(), TIMEOUT);
        assert!(!overdue_by(&deadline, TIMEOUT - Duration::from_millis(1)).await);
        let deadline = HeadDeadline::new(Instant::now(), TIMEOUT);
        assert!(overdue_by(&deadline, TIMEOUT + Duration::from_millis(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_request_is_never_cut_however_long_it_takes() {
        let deadline = HeadDeadline::new(Instant::now(), TIMEOUT);
        let busy = deadline.head_arrived(Version::HTTP_11);
        assert!(!overdue_by(&deadline, TIMEOUT * 10).await);
        drop(busy);
        // Idle from the drop (50 s in): the next head is due 5 s later, not at once.
        let ended = Instant::now();
        let watch = deadline.clone();
        let cut = tokio::spawn(async move {
            watch.overdue().await;
            Instant::now()
        });
        let cut_at = cut.await.expect("the watchdog completes");
        assert!(
            cut_at >= ended + TIMEOUT,
            "cut {:?} after idle",
            cut_at - ended
        );
        assert!(
            cut_at < ended + TIMEOUT * 2,
            "cut {:?} after idle",
            cut_at - ended
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_head_is_due_a_deadline_after_the_previous_answer() {
        let deadline = HeadDeadline::new(Instant::now(), TIMEOUT);
        tokio::time::advance(Duration::from_secs(3)).await;
        drop(deadline.head_arrived(Version::HTTP_11));
        // The first head came at 3 s; idle again from 3 s, so not due at 5 s but at 8 s.
        assert!(!overdue_by(&deadline, Duration::from_millis(7_900)).await);
        assert!(overdue_by(&deadline, Duration::from_millis(8_100)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn http2_connections_are_left_to_their_keep_alive_ping() {
        let deadline = HeadDeadline::new(Instant::now(), TIMEOUT);
        assert!(deadline.head_arrived(Version::HTTP_2).is_none());
        assert!(!overdue_by(&deadline, TIMEOUT * 10).await);
    }

    #[tokio::test(start_paused = true)]
    async fn overlapping_requests_keep_the_connection_busy_until_the_last_ends() {
        let deadline = HeadDeadline::new(Instant::now(), TIMEOUT);
        let first = deadline.head_arrived(Version::HTTP_11);
        let second = deadline.head_arrived(Version::HTTP_11);
        drop(first);
        assert!(!overdue_by(&deadline, TIMEOUT * 3).await);
        drop(second);
        let state = deadline.shared.state.load(Ordering::Acquire);
        assert_eq!(state & BUSY_MASK, 0);
        assert_eq!(stamp(state), 15_000, "idle stamped at the last drop");
    }
}
