//! Per-client token buckets (`[ratelimit]`): each client may send `burst` requests at once and
//! `per_second` on average; beyond that the answer is a 429 problem with `Retry-After`.
//!
//! A service puts its own routes behind the limit (probes and the admin port never are):
//!
//! ```
//! use axum::{Router, middleware, routing::get};
//! use platform::http::ratelimit::RateLimiter;
//! let settings = platform::config::RateLimitSettings { enabled: true, ..Default::default() };
//! let limiter = RateLimiter::new(&settings, Vec::new());
//! let routes: Router = Router::new()
//!     .route("/items", get(|| async { "[]" }))
//!     .route_layer(middleware::from_fn_with_state(limiter, RateLimiter::enforce));
//! ```
//!
//! Buckets live in this process, sharded to keep lock contention low, or, with
//! `ratelimit.url = "redis://…"`, in Redis, where every replica takes from the same bucket (one
//! atomic script per request, timed by the Redis server's clock, so replicas' clocks do not
//! matter). When Redis does not answer within [`REDIS_TIMEOUT`] the request is let through:
//! a broken limiter must not take the service down with it. `ratelimit_backend_errors_total`
//! counts those.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;

use crate::config::RateLimitSettings;
use crate::http::problem::Problem;
use crate::storage::StorageError;

const SHARDS: usize = 16;

/// Longest wait for Redis on the request path before the request goes through unlimited.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// Counter of limiter decisions Redis could not make (the request was let through).
pub const BACKEND_ERRORS_TOTAL: &str = "ratelimit_backend_errors_total";

/// What a bucket says about one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Go ahead; a token was taken.
    Allow,
    /// Refused; a token will be there after `retry_after`.
    Deny {
        /// How long until the next token.
        retry_after: Duration,
    },
}

/// Token buckets keyed by `K` (a client address, an account), bounded in memory: when a shard
/// is over its share of `max_keys`, buckets that have refilled completely are dropped, since a
/// full bucket and a missing one mean the same.
#[derive(Debug)]
pub struct TokenBuckets<K> {
    per_second: f64,
    burst: u32,
    max_per_shard: usize,
    shards: Vec<Mutex<HashMap<K, TokenBucket>>>,
}

/// One token bucket: `burst` tokens, refilled at `per_second`. For a single allowance (a
/// WebSocket connection's messages); [`TokenBuckets`] keeps one per key.
///
/// ```
/// use std::time::{Duration, Instant};
/// use platform::http::ratelimit::{Decision, TokenBucket};
/// let start = Instant::now();
/// let mut bucket = TokenBucket::new(10.0, 1, start);
/// assert_eq!(bucket.take(start), Decision::Allow);
/// assert!(matches!(bucket.take(start), Decision::Deny { .. }));
/// assert_eq!(bucket.take(start + Duration::from_millis(100)), Decision::Allow);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokenBucket {
    per_second: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(per_second: f64, burst: u32, now: Instant) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            per_second: per_second.max(f64::MIN_POSITIVE),
            burst,
            tokens: burst,
            updated: now,
        }
    }

    /// Takes one token at time `now`.
    pub fn take(&mut self, now: Instant) -> Decision {
        self.tokens = self.refilled(now);
        self.updated = now.max(self.updated);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Decision::Allow
        } else {
            Decision::Deny {
                retry_after: Duration::from_secs_f64((1.0 - self.tokens) / self.per_second),
            }
        }
    }

    /// Whether the bucket would be full at `now` (and so is the same as no bucket at all).
    pub fn is_full(&self, now: Instant) -> bool {
        self.refilled(now) >= self.burst
    }

    fn refilled(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (self.tokens + elapsed * self.per_second).min(self.burst)
    }
}

impl<K: Hash + Eq + Clone> TokenBuckets<K> {
    /// Buckets of `burst` tokens refilled at `per_second`, for at most about `max_keys` keys.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use platform::http::ratelimit::{Decision, TokenBuckets};
    /// let buckets = TokenBuckets::new(1.0, 2, 1000);
    /// let now = Instant::now();
    /// assert_eq!(buckets.take(&"alice", now), Decision::Allow);
    /// assert_eq!(buckets.take(&"alice", now), Decision::Allow);
    /// assert!(matches!(buckets.take(&"alice", now), Decision::Deny { .. }));
    /// assert_eq!(buckets.take(&"alice", now + Duration::from_secs(1)), Decision::Allow);
    /// ```
    pub fn new(per_second: f64, burst: u32, max_keys: usize) -> TokenBuckets<K> {
        TokenBuckets {
            per_second,
            burst,
            max_per_shard: (max_keys / SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Takes one token from `key`'s bucket at time `now`.
    pub fn take(&self, key: &K, now: Instant) -> Decision {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let shard = &self.shards[(hasher.finish() as usize) % SHARDS];
        // A poisoned shard only means another request panicked mid-update; its numbers are fine.
        let mut buckets = shard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= self.max_per_shard && !buckets.contains_key(key) {
            buckets.retain(|_, bucket| !bucket.is_full(now));
        }
        buckets
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::new(self.per_second, self.burst, now))
            .take(now)
    }

    /// How many keys hold a bucket now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().map(|buckets| buckets.len()).unwrap_or(0))
            .sum()
    }

    /// Whether no key holds a bucket.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The per-client limit of `[ratelimit]`, as axum middleware ([`RateLimiter::enforce`]).
/// Cloning shares the buckets.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    inner: Option<Arc<Limits>>,
}

#[derive(Debug)]
struct Limits {
    buckets: Buckets,
    trusted_proxies: Vec<IpNet>,
    per_second: f64,
    burst: u32,
}

#[derive(Debug)]
enum Buckets {
    Memory(TokenBuckets<IpAddr>),
    Redis(RedisBuckets),
}

impl RateLimiter {
    /// The in-process limiter `settings` describe (one that lets everything through when not
    /// enabled); client addresses come from `X-Forwarded-For` only when the peer is in
    /// `trusted_proxies`. `settings.url` is not read: see [`RateLimiter::connect`].
    pub fn new(settings: &RateLimitSettings, trusted_proxies: Vec<IpNet>) -> RateLimiter {
        let buckets = TokenBuckets::new(settings.per_second, settings.burst, settings.max_clients);
        RateLimiter::with_buckets(settings, trusted_proxies, Buckets::Memory(buckets))
    }

    /// The limiter `settings` describe, with its buckets where `settings.url` says: `memory:`
    /// or `redis://…` (keys `ratelimit:<namespace>:<client>`).
    pub async fn connect(
        settings: &RateLimitSettings,
        trusted_proxies: Vec<IpNet>,
        namespace: &str,
    ) -> Result<RateLimiter, StorageError> {
        let url = settings.url.expose();
        if !settings.enabled || url.starts_with("memory:") {
            return Ok(RateLimiter::new(settings, trusted_proxies));
        }
        if !(url.starts_with("redis:") || url.starts_with("rediss:")) {
            return Err(StorageError::InvalidUrl(
                "ratelimit.url must be memory: or redis://…".to_owned(),
            ));
        }
        let buckets = RedisBuckets::connect(url, namespace, settings).await?;
        metrics::counter!(BACKEND_ERRORS_TOTAL).increment(0);
        Ok(RateLimiter::with_buckets(
            settings,
            trusted_proxies,
            Buckets::Redis(buckets),
        ))
    }

    fn with_buckets(
        settings: &RateLimitSettings,
        trusted_proxies: Vec<IpNet>,
        buckets: Buckets,
    ) -> RateLimiter {
        if !settings.enabled {
            return RateLimiter { inner: None };
        }
        RateLimiter {
            inner: Some(Arc::new(Limits {
                buckets,
                trusted_proxies,
                per_second: settings.per_second,
                burst: settings.burst,
            })),
        }
    }

    /// Middleware: takes a token from the client's bucket or answers 429 with `Retry-After`.
    pub async fn enforce(
        State(limiter): State<RateLimiter>,
        request: Request,
        next: Next,
    ) -> Response {
        let Some(limits) = &limiter.inner else {
            return next.run(request).await;
        };
        let Some(client) = crate::http::client_ip::client_ip(&request, &limits.trusted_proxies)
        else {
            return next.run(request).await;
        };
        let decision = match &limits.buckets {
            Buckets::Memory(buckets) => buckets.take(&client, Instant::now()),
            Buckets::Redis(buckets) => buckets.take(client).await,
        };
        match decision {
            Decision::Allow => next.run(request).await,
            Decision::Deny { retry_after } => {
                let seconds = u32::try_from(retry_after.as_secs_f64().ceil() as u64)
                    .unwrap_or(u32::MAX)
                    .max(1);
                Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests")
                    .with_detail(format!(
                        "This client may send {} requests at once and {} per second; retry in {seconds} s.",
                        limits.burst, limits.per_second
                    ))
                    .with_retry_after(seconds)
                    .into_response()
            }
        }
    }
}

/// Token buckets in Redis: a hash per client with its tokens and when they were counted, updated
/// by one script so concurrent replicas never lose a take, and expiring once it would be full.
#[derive(Clone)]
struct RedisBuckets {
    connection: redis::aio::ConnectionManager,
    script: redis::Script,
    prefix: String,
    per_second: f64,
    burst: u32,
    failing: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for RedisBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisBuckets({})", self.prefix)
    }
}

/// `KEYS[1]` the bucket; `ARGV[1]` tokens per second, `ARGV[2]` burst. Returns
/// `{allowed (0|1), milliseconds until the next token}`.
const TAKE: &str = r"
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now_ms
tokens = math.min(burst, tokens + math.max(0, now_ms - at) * rate / 1000)
local allowed = 0
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait_ms = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now_ms)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return {allowed, wait_ms}
";

impl RedisBuckets {
    async fn connect(
        url: &str,
        namespace: &str,
        settings: &RateLimitSettings,
    ) -> Result<RedisBuckets, StorageError> {
        let client = redis::Client::open(url)
            .map_err(|error| StorageError::InvalidUrl(format!("ratelimit.url: {error}")))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let connection = tokio::time::timeout(
            Duration::from_secs(2),
            redis::aio::ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| StorageError::Unavailable("ratelimit.url: no connection within 2s".into()))?
        .map_err(|error| StorageError::Unavailable(Box::new(error)))?;
        Ok(RedisBuckets {
            connection,
            script: redis::Script::new(TAKE),
            prefix: format!("ratelimit:{namespace}:"),
            per_second: settings.per_second.max(f64::MIN_POSITIVE),
            burst: settings.burst.max(1),
            failing: Arc::default(),
        })
    }

    async fn take(&self, client: IpAddr) -> Decision {
        use std::sync::atomic::Ordering;
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(format!("{}{client}", self.prefix));
        invocation.arg(self.per_second).arg(self.burst);
        let answer = tokio::time::timeout(
            REDIS_TIMEOUT,
            invocation.invoke_async::<(u8, u64)>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok((allowed, wait_ms))) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("The rate limiter reaches Redis again.");
                }
                if allowed == 1 {
                    Decision::Allow
                } else {
                    Decision::Deny {
                        retry_after: Duration::from_millis(wait_ms),
                    }
                }
            }
            failed => {
                metrics::counter!(BACKEND_ERRORS_TOTAL).increment(1);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    let reason = match failed {
                        Ok(Err(error)) => error.to_string(),
                        _ => format!("no answer within {REDIS_TIMEOUT:?}"),
                    };
                    tracing::warn!(%reason, "The rate limiter cannot reach Redis; requests pass unlimited until it can.");
                }
                Decision::Allow
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_its_rate_and_caps_at_burst() {
        let buckets = TokenBuckets::new(10.0, 5, 100);
        let start = Instant::now();
        for _ in 0..5 {
            assert_eq!(buckets.take(&1, start), Decision::Allow);
        }
        let Decision::Deny { retry_after } = buckets.take(&1, start) else {
            panic!("the sixth request at once is refused");
        };
        assert!(
            (retry_after.as_secs_f64() - 0.1).abs() < 1e-9,
            "{retry_after:?}"
        );
        assert_eq!(
            buckets.take(&1, start + Duration::from_millis(100)),
            Decision::Allow
        );
        // A long pause refills to `burst`, not beyond.
        let later = start + Duration::from_secs(60);
        for _ in 0..5 {
            assert_eq!(buckets.take(&1, later), Decision::Allow);
        }
        assert!(matches!(buckets.take(&1, later), Decision::Deny { .. }));
        assert_eq!(
            buckets.take(&2, later),
            Decision::Allow,
            "keys are independent"
        );
    }

    #[test]
    fn memory_stays_bounded_by_dropping_full_buckets() {
        let buckets = TokenBuckets::new(1000.0, 1, SHARDS * 4);
        let start = Instant::now();
        for key in 0..10_000u32 {
            let _ = buckets.take(&key, start + Duration::from_millis(u64::from(key)));
        }
        assert!(
            buckets.len() <= SHARDS * 4 + SHARDS,
            "{} buckets",
            buckets.len()
        );
    }
}
