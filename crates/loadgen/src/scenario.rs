//! What an HTTP load sends: one file per service under `scenario/`.
//!
//! A scenario gives the requests to send once before the load (fixtures) and, per connection, an
//! endless stream of requests. The runners in `http` own connections, timing and counting.

pub mod hello;
pub mod messages;
pub mod notes;

use anyhow::bail;
use hyper::header::HeaderValue;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::http::client::Endpoint;
pub use crate::http::client::RequestSpec;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Service {
    /// The birthday API: `GET` and `PUT /hello/{username}`.
    Hello,
    /// The message store: `POST /messages` and `GET /messages/{digest}`.
    Messages,
    /// Notes' JSON API with a bearer token: `GET` (list) and `POST /api/v1/notes`.
    Notes,
}

/// Which scenario of a service, named by the method it loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    /// Read records written by the fixtures (notes: list the user's notes).
    Get,
    /// Replace a record (hello).
    Put,
    /// Create a record (messages, notes).
    Post,
    /// The soak's steady mix: 90% reads of the fixtures, 10% overwrites of them, so the load
    /// stores nothing new and memory has no reason to grow.
    Mix,
}

impl Kind {
    /// Name in reports: the method.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Get => "GET",
            Kind::Put => "PUT",
            Kind::Post => "POST",
            Kind::Mix => "mix",
        }
    }
}

/// Percent of the soak mix's requests that overwrite a fixture; the rest read one.
pub const MIX_WRITE_PERCENT: u32 = 10;

/// What a scenario's requests carry to authenticate, made for each run by [`Service::account`]:
/// nothing for hello and messages; for notes a fresh user's bearer token and that user's notes.
#[derive(Debug, Clone, Default)]
pub struct Account {
    /// `Bearer <token>`.
    pub authorization: Option<HeaderValue>,
    /// Ids of the notes the user has.
    pub note_ids: Vec<i64>,
}

impl Account {
    /// What the baseline's scenarios carry: it checks nothing, but gets a bearer token as long as
    /// notes' (64 hex digits) and as many note ids, so its requests are the same size.
    pub fn stand_in() -> Account {
        Account {
            authorization: Some(HeaderValue::from_static(
                "Bearer 0000000000000000000000000000000000000000000000000000000000000000",
            )),
            note_ids: (1..=notes::LISTED_NOTES as i64).collect(),
        }
    }
}

impl Service {
    /// Every service, in report order.
    pub const ALL: [Service; 3] = [Service::Hello, Service::Messages, Service::Notes];

    /// The package and binary name, also the prefix of its environment variables.
    pub fn name(self) -> &'static str {
        match self {
            Service::Hello => "hello",
            Service::Messages => "messages",
            Service::Notes => "notes",
        }
    }

    /// The benchmark's scenarios of this service, in report order.
    pub fn kinds(self) -> &'static [Kind] {
        match self {
            Service::Hello => &[Kind::Get, Kind::Put],
            Service::Messages => &[Kind::Post, Kind::Get],
            Service::Notes => &[Kind::Get, Kind::Post],
        }
    }

    /// The requests of scenario `kind`, in reports: `GET /hello/{username}`.
    pub fn route(self, kind: Kind) -> String {
        let (read, write) = match self {
            Service::Hello => ("GET /hello/{username}", "PUT /hello/{username}"),
            Service::Messages => ("GET /messages/{digest}", "POST /messages"),
            Service::Notes => ("GET /api/v1/notes", "PUT /api/v1/notes/{id}"),
        };
        match (self, kind) {
            (_, Kind::Get) => read.to_owned(),
            (Service::Hello, Kind::Put) => write.to_owned(),
            (Service::Messages, Kind::Post) => write.to_owned(),
            (Service::Notes, Kind::Post) => "POST /api/v1/notes".to_owned(),
            (_, Kind::Mix) => format!(
                "{}% {read}, {MIX_WRITE_PERCENT}% {write}",
                100 - MIX_WRITE_PERCENT
            ),
            (_, kind) => format!("{} (none)", kind.name()),
        }
    }

    /// What the fixtures of a GET write, in reports: `users`, `messages`.
    pub fn fixture_noun(self) -> &'static str {
        match self {
            Service::Hello => "users",
            Service::Messages => "messages",
            Service::Notes => "notes",
        }
    }

    /// Whether the service serves TLS unless told otherwise (messages does).
    pub fn tls_by_default(self) -> bool {
        self == Service::Messages
    }

    /// The account scenario `kind` runs as, set up on the server at `endpoint`: for notes a new
    /// user signed up through the HTML form, with an API token and, when `kind` reads notes,
    /// [`notes::LISTED_NOTES`] notes; for the others nothing.
    pub async fn account(self, endpoint: &Endpoint, kind: Kind) -> anyhow::Result<Account> {
        match self {
            Service::Hello | Service::Messages => Ok(Account::default()),
            Service::Notes => {
                let notes = match kind {
                    Kind::Post => 0,
                    _ => notes::LISTED_NOTES,
                };
                notes::sign_up(endpoint, notes).await
            }
        }
    }

    /// The scenario `kind` of this service; `fixtures` is how many records a GET reads (hello,
    /// messages), `account` what [`Service::account`] set up.
    pub fn scenario(
        self,
        kind: Kind,
        fixtures: usize,
        account: &Account,
    ) -> anyhow::Result<Box<dyn HttpScenario>> {
        let fixtures = fixtures.max(1);
        let notes_user = || {
            account.authorization.clone().ok_or_else(|| {
                anyhow::anyhow!("notes' scenarios need an account (Service::account)")
            })
        };
        Ok(match (self, kind) {
            (Service::Hello, Kind::Get) => Box::new(hello::Get::new(fixtures)),
            (Service::Hello, Kind::Put) => Box::new(hello::Put),
            (Service::Hello, Kind::Mix) => Box::new(Mix {
                read: Box::new(hello::Get::new(fixtures)),
                write: Box::new(hello::Overwrite::new(fixtures)),
            }),
            (Service::Messages, Kind::Post) => Box::new(messages::Post::new()),
            (Service::Messages, Kind::Get) => Box::new(messages::Get::new(fixtures)),
            (Service::Messages, Kind::Mix) => Box::new(Mix {
                read: Box::new(messages::Get::new(fixtures)),
                write: Box::new(messages::Repost::new(fixtures)),
            }),
            (Service::Notes, Kind::Get) => Box::new(notes::List::new(notes_user()?)),
            (Service::Notes, Kind::Post) => Box::new(notes::Create::new(notes_user()?)),
            (Service::Notes, Kind::Mix) => {
                let authorization = notes_user()?;
                if account.note_ids.is_empty() {
                    bail!("notes' mix updates the account's notes, and it has none");
                }
                Box::new(Mix {
                    read: Box::new(notes::List::new(authorization.clone())),
                    write: Box::new(notes::Update::new(authorization, account.note_ids.clone())),
                })
            }
            (service, kind) => {
                let known: Vec<&str> = service.kinds().iter().map(|kind| kind.name()).collect();
                bail!(
                    "{} has no {} scenario; it has {} and mix",
                    service.name(),
                    kind.name(),
                    known.join(", ")
                )
            }
        })
    }
}

/// [`MIX_WRITE_PERCENT`]% of `write`'s requests, the rest `read`'s, chosen at random per request;
/// the fixtures are `read`'s, which `write` overwrites.
struct Mix {
    read: Box<dyn HttpScenario>,
    write: Box<dyn HttpScenario>,
}

impl HttpScenario for Mix {
    fn fixtures(&self) -> Vec<RequestSpec> {
        self.read.fixtures()
    }

    fn stream(&self, connection_idx: usize) -> Box<dyn RequestStream> {
        Box::new(MixStream {
            read: self.read.stream(connection_idx),
            write: self.write.stream(connection_idx),
            rng: StdRng::seed_from_u64(rand::rng().random::<u64>() ^ connection_idx as u64),
        })
    }
}

struct MixStream {
    read: Box<dyn RequestStream>,
    write: Box<dyn RequestStream>,
    rng: StdRng,
}

impl RequestStream for MixStream {
    fn next_request(&mut self) -> RequestSpec {
        if self.rng.random_range(0..100) < MIX_WRITE_PERCENT {
            self.write.next_request()
        } else {
            self.read.next_request()
        }
    }
}

#[cfg(test)]
mod tests {
    use hyper::Method;

    use super::*;

    fn bearer() -> Account {
        Account {
            authorization: Some(HeaderValue::from_static("Bearer t")),
            note_ids: vec![4, 5],
        }
    }

    #[test]
    fn every_listed_kind_and_the_mix_have_a_scenario_and_others_are_refused() {
        for service in Service::ALL {
            for &kind in service.kinds().iter().chain(&[Kind::Mix]) {
                assert!(
                    service.scenario(kind, 10, &bearer()).is_ok(),
                    "{service:?} {kind:?}"
                );
            }
        }
        let error = Service::Hello
            .scenario(Kind::Post, 10, &Account::default())
            .err()
            .expect("hello has no POST");
        assert_eq!(
            error.to_string(),
            "hello has no POST scenario; it has GET, PUT and mix"
        );
        assert!(
            Service::Messages
                .scenario(Kind::Put, 10, &Account::default())
                .is_err()
        );
        // notes cannot run without a user, and its mix needs notes to update.
        assert!(
            Service::Notes
                .scenario(Kind::Get, 10, &Account::default())
                .is_err()
        );
        let no_notes = Account {
            note_ids: Vec::new(),
            ..bearer()
        };
        assert!(Service::Notes.scenario(Kind::Mix, 10, &no_notes).is_err());
    }

    #[test]
    fn the_mix_is_mostly_reads_of_the_fixtures_and_some_overwrites() {
        let mix = Service::Hello
            .scenario(Kind::Mix, 50, &Account::default())
            .expect("scenario");
        let fixture_paths: std::collections::HashSet<String> =
            mix.fixtures().into_iter().map(|spec| spec.path).collect();
        assert_eq!(fixture_paths.len(), 50);
        let mut stream = mix.stream(0);
        let mut writes = 0;
        for _ in 0..10_000 {
            let spec = stream.next_request();
            // Reads and writes both touch only fixture users: nothing new is stored.
            assert!(fixture_paths.contains(&spec.path), "{}", spec.path);
            if spec.method == Method::PUT {
                writes += 1;
            } else {
                assert_eq!(spec.method, Method::GET);
            }
        }
        // 10% of 10,000 is 1,000; ±200 is over six standard deviations.
        assert!((800..=1200).contains(&writes), "{writes} writes");
    }

    #[test]
    fn routes_name_the_requests_of_each_scenario() {
        assert_eq!(Service::Hello.route(Kind::Get), "GET /hello/{username}");
        assert_eq!(Service::Messages.route(Kind::Post), "POST /messages");
        assert_eq!(Service::Notes.route(Kind::Post), "POST /api/v1/notes");
        assert_eq!(
            Service::Notes.route(Kind::Mix),
            "90% GET /api/v1/notes, 10% PUT /api/v1/notes/{id}"
        );
    }
}
