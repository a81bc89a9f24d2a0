//! What an HTTP load sends: one file per service under `scenario/`.
//!
//! A scenario gives the requests to send once before the load (fixtures) and, per connection, an
//! endless stream of requests. The runner in `http` owns connections, timing and counting.

pub mod hello;
pub mod messages;

use anyhow::bail;
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
    /// Requests sent once before warm-up, each of which must succeed (e.g. the users GET reads).
    fn fixtures(&self) -> Vec<RequestSpec>;
    /// The request stream of connection `connection_idx`.
    fn stream(&self, connection_idx: usize) -> Box<dyn RequestStream>;
}

/// A service loadgen has scenarios for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// The birthday API: `GET` and `PUT /hello/{username}`.
    Hello,
    /// The message store: `POST /messages` and `GET /messages/{digest}`.
    Messages,
}

/// Which scenario of a service, named by the method it loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    /// Read records written by the fixtures.
    Get,
    /// Replace a record (hello).
    Put,
    /// Create a record (messages).
    Post,
}

impl Kind {
    /// Name in reports: the method.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Get => "GET",
            Kind::Put => "PUT",
            Kind::Post => "POST",
        }
    }
}

impl Service {
    /// The package and binary name, also the prefix of its environment variables.
    pub fn name(self) -> &'static str {
        match self {
            Service::Hello => "hello",
            Service::Messages => "messages",
        }
    }

    /// The scenarios this service has, in report order.
    pub fn kinds(self) -> &'static [Kind] {
        match self {
            Service::Hello => &[Kind::Get, Kind::Put],
            Service::Messages => &[Kind::Post, Kind::Get],
        }
    }

    /// What the fixtures of a GET write, in reports: `users`, `messages`.
    pub fn fixture_noun(self) -> &'static str {
        match self {
            Service::Hello => "users",
            Service::Messages => "messages",
        }
    }

    /// The scenario `kind` of this service; `fixtures` is how many records a GET reads.
    pub fn scenario(self, kind: Kind, fixtures: usize) -> anyhow::Result<Box<dyn HttpScenario>> {
        let fixtures = fixtures.max(1);
        Ok(match (self, kind) {
            (Service::Hello, Kind::Get) => Box::new(hello::Get::new(fixtures)),
            (Service::Hello, Kind::Put) => Box::new(hello::Put),
            (Service::Messages, Kind::Post) => Box::new(messages::Post::new()),
            (Service::Messages, Kind::Get) => Box::new(messages::Get::new(fixtures)),
            (service, kind) => {
                let known: Vec<&str> = service.kinds().iter().map(|kind| kind.name()).collect();
                bail!(
                    "{} has no {} scenario; it has {}",
                    service.name(),
                    kind.name(),
                    known.join(" and ")
                )
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_kind_has_a_scenario_and_others_are_refused() {
        for service in [Service::Hello, Service::Messages] {
            for &kind in service.kinds() {
                assert!(service.scenario(kind, 10).is_ok(), "{service:?} {kind:?}");
            }
        }
        let error = Service::Hello
            .scenario(Kind::Post, 10)
            .err()
            .expect("hello has no POST");
        assert_eq!(
            error.to_string(),
            "hello has no POST scenario; it has GET and PUT"
        );
        assert!(Service::Messages.scenario(Kind::Put, 10).is_err());
    }
}
