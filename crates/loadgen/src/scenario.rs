//! What an HTTP load sends: one file per service under `scenario/`.
//!
//! A scenario gives the requests to send once before the load (fixtures) and, per connection, an
//! endless stream of requests. The runner in `http` owns connections, timing and counting.

pub mod hello;

use bytes::Bytes;
use hyper::Method;

/// One request, without host: the runner adds `Host` and, for a body, `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    /// The method.
    pub method: Method,
    /// Path and query, origin form (`/hello/alice`).
    pub path: String,
    /// A JSON body, if any.
    pub json_body: Option<Bytes>,
}

/// The requests of one connection, generated as it goes.
pub trait RequestStream: Send {
    /// The next request to send.
    fn next_request(&mut self) -> RequestSpec;
}

/// A kind of load on one service.
pub trait HttpScenario: Send + Sync {
    /// Short name for reports (`GET`, `PUT`).
    fn name(&self) -> &'static str;
    /// Requests sent once before warm-up, each of which must succeed (e.g. the users GET reads).
    fn fixtures(&self) -> Vec<RequestSpec>;
    /// The request stream of connection `connection_idx`.
    fn stream(&self, connection_idx: usize) -> Box<dyn RequestStream>;
}
