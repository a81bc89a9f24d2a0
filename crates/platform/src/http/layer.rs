//! The platform's per-request work in one hand-written service and one future: request id,
//! sensitive headers, the request span, metrics and SLO budgets, panic catching, the timeout,
//! the body limit, the concurrency limit with load shedding, security headers and the final
//! problem rendering.
//!
//! It replaces a tower stack of a dozen layers. `Router::layer` wraps every route in the stack,
//! and axum clones a route's service for each request: with a dozen layers that was a dozen
//! clones, a dozen nested futures moved into one another, and a boxed future of our own. Here
//! a request costs one clone of this service (two reference counts), no allocation of its own
//! unless it generates a request id, and no timer unless the route actually waits.
//!
//! What each promise costs on the path of a request that completes at once (hello on
//! `memory:`): a header lookup (request id), one pass over the request headers (sensitive
//! ones), a clock read and two atomic additions (metrics, in flight), one atomic addition and
//! subtraction (concurrency limit), five header inserts (security headers and the request id),
//! a lookup of the cached histogram handle, and the budgets' atomic counters.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::header::Entry;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};
use tracing::Span;

use crate::http::observe;
use crate::http::problem::Problem;
use crate::http::request_id::RequestIds;
use crate::metrics::{HttpMetrics, InFlight};
use crate::slo::budget::{Budgets, UNMATCHED_ROUTE};

/// The request id header, as a `HeaderName` built once.
const REQUEST_ID: HeaderName = HeaderName::from_static(crate::http::REQUEST_ID);

/// Response headers every answer carries unless the route set its own (an HTML page's CSP).
const SECURITY_HEADERS: [(HeaderName, HeaderValue); 4] = [
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    ),
];

/// What every route's copy of the service shares: one allowance of requests in flight, one
/// request id generator, one set of metric handles and budgets.
struct Shared {
    metrics: HttpMetrics,
    budgets: Budgets,
    request_ids: RequestIds,
    in_flight: AtomicUsize,
    max_in_flight: usize,
    timeout: Duration,
    body_limit: usize,
}

/// Wraps each route in [`Platform`]; see the module documentation.
#[derive(Clone)]
pub(crate) struct PlatformLayer {
    shared: Arc<Shared>,
}

/// The limits and observers [`PlatformLayer`] applies.
pub(crate) struct Limits {
    /// `server.request_timeout`.
    pub(crate) timeout: Duration,
    /// `server.body_limit`, in bytes.
    pub(crate) body_limit: usize,
    /// `server.max_concurrency`.
    pub(crate) max_in_flight: usize,
}

impl PlatformLayer {
    pub(crate) fn new(metrics: HttpMetrics, budgets: Budgets, limits: Limits) -> PlatformLayer {
        PlatformLayer {
            shared: Arc::new(Shared {
                metrics,
                budgets,
                request_ids: RequestIds::new(),
                in_flight: AtomicUsize::new(0),
                // A limit of 0 would shed everything; the tower limit it replaces treated it
                // the same way, but a server that answers nothing is never what was meant.
                max_in_flight: limits.max_in_flight.max(1),
                timeout: limits.timeout,
                body_limit: limits.body_limit,
            }),
        }
    }
}

impl<S> Layer<S> for PlatformLayer {
    type Service = Platform<S>;

    fn layer(&self, inner: S) -> Platform<S> {
        Platform {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// One route wrapped in the platform's per-request work.
#[derive(Clone)]
pub(crate) struct Platform<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<Request> for Platform<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = PlatformFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let shared = self.shared.clone();
        let request_id = match request.headers().get(&REQUEST_ID) {
            Some(sent) => sent.clone(),
            None => {
                let generated = shared.request_ids.next();
                request.headers_mut().insert(REQUEST_ID, generated.clone());
                generated
            }
        };
        mark_sensitive_headers(&mut request);
        let route = request.extensions().get::<MatchedPath>().cloned();
        let span = observe::request_span(&request, route.as_ref(), &request_id);
        let method = request.method().clone();
        // Kept only to explain a bare 404 or 405; cloning a `Uri` shares its bytes.
        let uri = request.uri().clone();
        let in_flight = shared.metrics.start(route, &method, started);
        let admitted = admit(&shared, &mut request);
        let state = match admitted {
            Err(refusal) => State::Early(Some(refusal.into_response())),
            Ok(permit) => {
                let called = {
                    let _entered = span.enter();
                    std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request)))
                };
                match called {
                    Ok(future) => State::Running {
                        future,
                        deadline: None,
                        _permit: permit,
                    },
                    Err(panic) => State::Early(Some(panicked(panic))),
                }
            }
        };
        PlatformFuture {
            state,
            finish: Some(Finish {
                shared,
                started,
                request_id,
                span,
                method,
                uri,
                in_flight,
            }),
        }
    }
}

/// Credentials never reach a log line, whatever a later layer prints: one pass over the
/// request's headers instead of a lookup per header name.
fn mark_sensitive_headers(request: &mut Request) {
    for (name, value) in request.headers_mut().iter_mut() {
        if name == header::AUTHORIZATION
            || name == header::COOKIE
            || name == header::PROXY_AUTHORIZATION
        {
            value.set_sensitive(true);
        }
    }
}

/// The checks made before the route runs: the body limit on a declared length (a longer body
/// is refused before it is read), and a place among the requests in flight (beyond
/// `max_concurrency` a request is shed at once instead of queueing).
fn admit(shared: &Arc<Shared>, request: &mut Request) -> Result<InFlightPermit, Refusal> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let limit = u64::try_from(shared.body_limit).unwrap_or(u64::MAX);
    if declared.is_some_and(|length| length > limit) {
        return Err(Refusal::BodyTooLarge);
    }
    // A body whose length is bounded (a declared `Content-Length`, which hyper and h2 hold the
    // body to, or no body at all) cannot exceed the limit; only an open-ended one (chunked) is
    // cut at the limit as it streams, and the JSON extractor then answers 413.
    let bounded = http_body::Body::size_hint(request.body())
        .upper()
        .is_some_and(|upper| upper <= limit);
    if !bounded {
        let body = std::mem::take(request.body_mut());
        *request.body_mut() = Body::new(http_body_util::Limited::new(body, shared.body_limit));
    }
    if shared.in_flight.fetch_add(1, Ordering::AcqRel) >= shared.max_in_flight {
        shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        return Err(Refusal::Overloaded);
    }
    Ok(InFlightPermit {
        shared: shared.clone(),
    })
}

/// Why a request was answered before its route ran.
enum Refusal {
    /// Its declared `Content-Length` is over `server.body_limit`: `413`.
    BodyTooLarge,
    /// `server.max_concurrency` requests are in flight: `503` with `Retry-After`.
    Overloaded,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            // A bare status: `finalize` gives it the problem body every 413 has.
            Refusal::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
            Refusal::Overloaded => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Server overloaded",
            )
            .with_detail("Too many requests are in flight; retry shortly.")
            .with_retry_after(1)
            .into_response(),
        }
    }
}

/// A place among the requests in flight, given back when the route's future is done or
/// dropped.
struct InFlightPermit {
    shared: Arc<Shared>,
}

impl Drop for InFlightPermit {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The future of one request: the route's future under the timeout, then the response made
/// what the platform promises.
pub(crate) struct PlatformFuture<F> {
    state: State<F>,
    /// Taken when the response is ready; still here when the client went away, so its drop
    /// counts the abort (`InFlight`).
    finish: Option<Finish>,
}

enum State<F> {
    /// The route is running. `deadline` is made the first time it is not ready: a route that
    /// answers on its first poll (most, on a local store) never touches the timer wheel.
    Running {
        future: F,
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
        _permit: InFlightPermit,
    },
    /// The answer was decided before the route ran (413, shed 503, a panic in `call`).
    Early(Option<Response>),
}

/// What is done with the response once it is there.
struct Finish {
    shared: Arc<Shared>,
    started: Instant,
    request_id: HeaderValue,
    span: Span,
    method: Method,
    uri: Uri,
    in_flight: InFlight,
}

impl<F> Future for PlatformFuture<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let Some(finish) = this.finish.as_ref() else {
            return Poll::Pending;
        };
        let response = match &mut this.state {
            State::Early(response) => response
                .take()
                .unwrap_or_else(|| Problem::internal().into_response()),
            State::Running {
                future, deadline, ..
            } => {
                let polled = {
                    let _entered = finish.span.enter();
                    std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *future).poll(cx)))
                };
                match polled {
                    Ok(Poll::Ready(Ok(response))) => response,
                    Err(panic) => panicked(panic),
                    Ok(Poll::Pending) => {
                        let timeout = finish.shared.timeout;
                        let sleep = deadline.get_or_insert_with(|| {
                            let at = tokio::time::Instant::from_std(finish.started) + timeout;
                            Box::pin(tokio::time::sleep_until(at))
                        });
                        if sleep.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        timed_out(timeout)
                    }
                }
            }
        };
        // The route's future and its place in flight go before the answer is finished, as
        // the tower layers did.
        this.state = State::Early(None);
        let Some(finish) = this.finish.take() else {
            return Poll::Pending;
        };
        Poll::Ready(Ok(finish.respond(response)))
    }
}

impl Finish {
    fn respond(self, response: Response) -> Response {
        let Finish {
            shared,
            started: _,
            request_id,
            span,
            method,
            uri,
            mut in_flight,
        } = self;
        let status = response.status();
        let latency = in_flight.finish(status);
        // Recorded before the response is returned, so a client that has its answer can
        // already read it at `/slo`.
        shared.budgets.record_request(
            in_flight
                .route()
                .map_or(UNMATCHED_ROUTE, MatchedPath::as_str),
            status.as_u16(),
            latency,
        );
        drop(in_flight);
        observe::log_response(status, latency, &span);
        let mut response =
            crate::http::problem::finalize(response, request_id.to_str().ok(), &method, &uri);
        let headers = response.headers_mut();
        headers.reserve(SECURITY_HEADERS.len() + 1);
        // One probe each: a route's own value (an HTML page's CSP) stays.
        for (name, value) in SECURITY_HEADERS {
            if let Entry::Vacant(slot) = headers.entry(name) {
                slot.insert(value);
            }
        }
        if let Entry::Vacant(slot) = headers.entry(REQUEST_ID) {
            slot.insert(request_id);
        }
        response
    }
}

fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = message, "A handler panicked; answered 500.");
    Problem::internal().into_response()
}

fn timed_out(timeout: Duration) -> Response {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "timeout",
        "Request timed out",
    )
    .with_detail(format!("The request did not complete within {timeout:?}."))
    .with_retry_after(1)
    .into_response()
}
