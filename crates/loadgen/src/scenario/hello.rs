//! hello's scenarios: `GET /hello/{username}` over users written beforehand,
//! `PUT /hello/{username}` of fresh random users, and (for the soak) `PUT` over the users written
//! beforehand.

use bytes::Bytes;
use hyper::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{HttpScenario, RequestSpec, RequestStream};

/// The name of fixture user `idx`: `user` followed by `idx` in base 26 with letters, since hello
/// accepts letters only (`0` → `useraaaaa`, `1` → `useraaaab`).
pub fn user_name(idx: usize) -> String {
    const WIDTH: usize = 5;
    let mut letters = [b'a'; WIDTH];
    let mut rest = idx;
    for slot in letters.iter_mut().rev() {
        *slot = b'a' + (rest % 26) as u8;
        rest /= 26;
    }
    let mut name = String::from("user");
    if rest > 0 {
        // Past 26^5 users: a prefix keeps names distinct.
        name.push_str(&user_name(rest - 1)[4..]);
    }
    name.extend(letters.iter().map(|&b| char::from(b)));
    name
}

/// `{"dateOfBirth":"YYYY-MM-DD"}` for a date that is always valid and in the past.
fn birthday_body(rng: &mut StdRng) -> Bytes {
    let year = rng.random_range(1950..=2005);
    let month = rng.random_range(1..=12);
    let day = rng.random_range(1..=28);
    Bytes::from(format!(
        r#"{{"dateOfBirth":"{year:04}-{month:02}-{day:02}"}}"#
    ))
}

fn put(name: &str, body: Bytes) -> RequestSpec {
    RequestSpec {
        method: Method::PUT,
        path: format!("/hello/{name}"),
        json_body: Some(body),
        authorization: None,
    }
}

fn stream_rng(connection_idx: usize) -> StdRng {
    // Seeded from the OS so two runs do not write the same "fresh" users.
    let mut seed = rand::rng().random::<u64>();
    seed ^= connection_idx as u64;
    StdRng::seed_from_u64(seed)
}

/// `GET /hello/{username}` over `users` fixture users, picked uniformly at random.
pub struct Get {
    users: usize,
}

impl Get {
    /// Reads `users` fixture users (at least one).
    pub fn new(users: usize) -> Get {
        Get {
            users: users.max(1),
        }
    }
}

impl HttpScenario for Get {
    fn fixtures(&self) -> Vec<RequestSpec> {
        let mut rng = stream_rng(0);
        (0..self.users)
            .map(|idx| put(&user_name(idx), birthday_body(&mut rng)))
            .collect()
    }

    fn stream(&self, connection_idx: usize) -> Box<dyn RequestStream> {
        Box::new(GetStream {
            users: self.users,
            rng: stream_rng(connection_idx),
        })
    }
}

struct GetStream {
    users: usize,
    rng: StdRng,
}

impl RequestStream for GetStream {
    fn next_request(&mut self) -> RequestSpec {
        let idx = self.rng.random_range(0..self.users);
        RequestSpec {
            method: Method::GET,
            path: format!("/hello/{}", user_name(idx)),
            json_body: None,
            authorization: None,
        }
    }
}

/// `PUT /hello/{username}` of random 12-letter users with random valid dates.
pub struct Put;

impl HttpScenario for Put {
    fn fixtures(&self) -> Vec<RequestSpec> {
        Vec::new()
    }

    fn stream(&self, connection_idx: usize) -> Box<dyn RequestStream> {
        Box::new(PutStream {
            rng: stream_rng(connection_idx),
        })
    }
}

struct PutStream {
    rng: StdRng,
}

impl RequestStream for PutStream {
    fn next_request(&mut self) -> RequestSpec {
        let name: String = (0..12)
            .map(|_| char::from(self.rng.random_range(b'a'..=b'z')))
            .collect();
        let body = birthday_body(&mut self.rng);
        put(&name, body)
    }
}

/// `PUT /hello/{username}` of one of `users` fixture users, picked uniformly at random, with a
/// random date: an overwrite, so the store does not grow.
pub struct Overwrite {
    users: usize,
}

impl Overwrite {
    /// Overwrites `users` fixture users (at least one).
    pub fn new(users: usize) -> Overwrite {
        Overwrite {
            users: users.max(1),
        }
    }
}

impl HttpScenario for Overwrite {
    fn fixtures(&self) -> Vec<RequestSpec> {
        Vec::new()
    }

    fn stream(&self, connection_idx: usize) -> Box<dyn RequestStream> {
        Box::new(OverwriteStream {
            users: self.users,
            rng: stream_rng(connection_idx),
        })
    }
}

struct OverwriteStream {
    users: usize,
    rng: StdRng,
}

impl RequestStream for OverwriteStream {
    fn next_request(&mut self) -> RequestSpec {
        let idx = self.rng.random_range(0..self.users);
        let body = birthday_body(&mut self.rng);
        put(&user_name(idx), body)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn letters_only(name: &str) -> bool {
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphabetic())
    }

    #[test]
    fn user_names_are_distinct_letters_only_usernames() {
        assert_eq!(user_name(0), "useraaaaa");
        assert_eq!(user_name(1), "useraaaab");
        assert_eq!(user_name(26), "useraaaba");
        // The start, and both sides of the point where five letters run out.
        let wrap = 26usize.pow(5);
        let mut seen = HashSet::new();
        for idx in (0..3000).chain(wrap - 1000..wrap + 1000) {
            let name = user_name(idx);
            assert!(
                letters_only(&name),
                "{name:?} is not a valid hello username"
            );
            assert!(seen.insert(name.clone()), "{name:?} repeats at {idx}");
        }
    }

    #[test]
    fn requests_are_what_hello_accepts() {
        let get = Get::new(10);
        let fixtures = get.fixtures();
        assert_eq!(fixtures.len(), 10);
        let fixture_paths: HashSet<_> = fixtures.iter().map(|spec| spec.path.clone()).collect();
        let mut stream = get.stream(3);
        for _ in 0..100 {
            let spec = stream.next_request();
            assert_eq!(spec.method, Method::GET);
            assert!(
                fixture_paths.contains(&spec.path),
                "{} was never written",
                spec.path
            );
        }

        let mut stream = Put.stream(0);
        for _ in 0..100 {
            let spec = stream.next_request();
            assert_eq!(spec.method, Method::PUT);
            let name = spec.path.strip_prefix("/hello/").expect("hello path");
            assert!(letters_only(name), "{name:?}");
            let body: serde_json::Value =
                serde_json::from_slice(spec.json_body.as_deref().expect("a body")).expect("JSON");
            let date = body["dateOfBirth"].as_str().expect("dateOfBirth");
            assert!(
                time::Date::parse(
                    date,
                    time::macros::format_description!("[year]-[month]-[day]")
                )
                .is_ok(),
                "{date:?} is not a date"
            );
        }
    }
}
