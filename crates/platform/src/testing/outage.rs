//! A backend outage under load, for services' tests: concurrent writers keep calling a
//! service while the real server behind it ([`ServerProcess`]) is stopped and started again.
//! Every answer is timed and kept; [`backend_restart`] asserts what the design promises (fast
//! refusals — 503 problems over HTTP — and failing readiness while the server is gone, recovery
//! without a restart of the service) and returns the acknowledged writes, so the test can read
//! each one back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::app::{Readiness, ServiceProcess, eventually, eventually_within};
use super::servers::ServerProcess;

/// Longest any answer may take while the server is down.
pub const OUTAGE_ANSWER_LIMIT: Duration = Duration::from_secs(1);
/// Writes acknowledged before the server is stopped, and again after it is back.
const ACKNOWLEDGED_EACH_SIDE: usize = 40;
/// Refusals seen while the server is down before it is started again.
const REFUSALS_WHILE_DOWN: usize = 40;
/// Longest the service may take to accept writes again once the server accepts connections.
const RECOVERY_LIMIT: Duration = Duration::from_secs(20);

/// What one write attempt came to.
#[derive(Debug)]
struct Answer<K> {
    started: Instant,
    finished: Instant,
    outcome: Outcome<K>,
}

#[derive(Debug)]
enum Outcome<K> {
    /// The service acknowledged the write; `K` is what reads it back.
    Acknowledged(K),
    /// The service refused it.
    Refused(Refusal),
}

/// A write the service did not acknowledge: how it said so, and whether that is the refusal
/// the design promises for an unavailable backend.
#[derive(Debug)]
pub struct Refusal {
    expected: bool,
    answer: String,
}

impl Refusal {
    /// A refusal described by `answer` (e.g. the frame received); `expected` when it is the
    /// one the service promises while its backend is down.
    pub fn new(expected: bool, answer: impl Into<String>) -> Refusal {
        Refusal {
            expected,
            answer: answer.into(),
        }
    }

    /// How the service answered.
    pub fn answer(&self) -> &str {
        &self.answer
    }

    /// An HTTP answer other than the write's success: expected when it is a 503
    /// `application/problem+json` with `Retry-After`.
    pub async fn from_response(response: reqwest::Response) -> Refusal {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let retry_after = header("retry-after");
        let status = response.status().as_u16();
        let expected = status == 503
            && content_type == crate::http::problem::CONTENT_TYPE
            && retry_after.is_some();
        let body = response.text().await.unwrap_or_default();
        Refusal::new(
            expected,
            format!("{status}, content-type {content_type:?}, retry-after {retry_after:?}: {body}"),
        )
    }
}

/// What [`backend_restart`] measured, and the writes the service acknowledged.
#[derive(Debug)]
pub struct OutageReport<K> {
    /// Every acknowledged write, before, during (in flight at the stop) and after the outage.
    pub acknowledged: Vec<K>,
    /// Answers given while the server was down (503 problems, and writes in flight at the stop).
    pub outage_answers: usize,
    /// The slowest of them.
    pub max_outage_latency: Duration,
    /// From the server's exit to the first refusal (zero if one came while it was shutting down).
    pub first_refusal_after_stop: Duration,
    /// From the server accepting connections again to the first acknowledged write.
    pub recovery: Duration,
}

impl<K> std::fmt::Display for OutageReport<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} writes acknowledged; {} answers while the server was down, the slowest in {:?}; \
             the first refusal {:?} after the server exited; writes acknowledged again {:?} after it \
             accepted connections",
            self.acknowledged.len(),
            self.outage_answers,
            self.max_outage_latency,
            self.first_refusal_after_stop,
            self.recovery
        )
    }
}

/// Runs `writers` tasks that call `write(writer, number)` in a loop (`writer` is the task's
/// index, for a connection of its own; `number` is one no other call gets) against a service
/// that stores into `server`, whose admin listener is `admin`:
///
/// 1. once writes are acknowledged, stops `server` ([`ServerProcess::stop`]);
/// 2. while it is down: every answer is an expected [`Refusal`] (over HTTP a 503
///    `application/problem+json` with `Retry-After`), given in under [`OUTAGE_ANSWER_LIMIT`]
///    (a write in flight at the stop may still succeed, as quickly), the first within
///    [`OUTAGE_ANSWER_LIMIT`] of the server's exit, and the admin `/readyz` still answers 200,
///    `warn`, with the backend's check failing: the process stays in the Service and answers;
/// 3. starts `server` again: writes are acknowledged again and `/readyz` answers 200, `pass`,
///    with no help from the test.
///
/// `write` returns `Ok(key)` for an acknowledged write and `Err(refusal)` for any other answer
/// ([`Refusal::from_response`] over HTTP). Panics when an assertion fails; otherwise returns
/// every acknowledged key for the test to read back.
pub async fn backend_restart<K, W, Fut>(
    server: &mut ServerProcess,
    admin: SocketAddr,
    writers: usize,
    write: W,
) -> OutageReport<K>
where
    K: std::fmt::Debug + Send + 'static,
    W: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<K, Refusal>> + Send + 'static,
{
    let answers: Arc<Mutex<Vec<Answer<K>>>> = Arc::default();
    let running = Arc::new(AtomicBool::new(true));
    let numbers = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let (write, answers, running, numbers) = (
                write.clone(),
                answers.clone(),
                running.clone(),
                numbers.clone(),
            );
            tokio::spawn(async move {
                while running.load(Ordering::Relaxed) {
                    let number = numbers.fetch_add(1, Ordering::Relaxed);
                    let started = Instant::now();
                    let outcome = match write(writer, number).await {
                        Ok(key) => Outcome::Acknowledged(key),
                        Err(refusal) => Outcome::Refused(refusal),
                    };
                    let answer = Answer {
                        started,
                        finished: Instant::now(),
                        outcome,
                    };
                    lock(&answers).push(answer);
                }
            })
        })
        .collect();
    let readyz = format!("http://{admin}/readyz");
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client builds");
    let ready = |wanted: fn(&Readiness) -> bool| {
        let (client, readyz) = (client.clone(), readyz.clone());
        move || {
            let (client, readyz) = (client.clone(), readyz.clone());
            async move {
                Readiness::fetch(&client, &readyz)
                    .await
                    .is_some_and(|readiness| wanted(&readiness))
            }
        }
    };
    let acknowledged_since = |since: Instant| {
        let answers = answers.clone();
        move || {
            let count = lock(&answers)
                .iter()
                .filter(|a| a.started >= since && matches!(a.outcome, Outcome::Acknowledged(_)))
                .count();
            async move { count >= ACKNOWLEDGED_EACH_SIDE }
        }
    };
    let refused_since = |since: Instant| {
        let answers = answers.clone();
        move || {
            let count = lock(&answers)
                .iter()
                .filter(|a| a.started >= since && matches!(a.outcome, Outcome::Refused(_)))
                .count();
            async move { count >= REFUSALS_WHILE_DOWN }
        }
    };

    let began = Instant::now();
    eventually(ready(Readiness::passing)).await;
    eventually(acknowledged_since(began)).await;

    let stopping = Instant::now();
    server.stop().await;
    let stopped = Instant::now();
    eventually(ready(Readiness::serving_through_outage)).await;
    eventually(refused_since(stopped)).await;

    let starting = Instant::now();
    server.start().await;
    let started = Instant::now();
    eventually_within(RECOVERY_LIMIT, acknowledged_since(started)).await;
    eventually_within(RECOVERY_LIMIT, ready(Readiness::passing)).await;

    running.store(false, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("a writer ran to the end");
    }
    let answers = std::mem::take(&mut *lock(&answers));
    check(answers, stopping, stopped, starting, started)
}

/// Asserts the promises over every answer and sums them up.
fn check<K: std::fmt::Debug>(
    answers: Vec<Answer<K>>,
    stopping: Instant,
    stopped: Instant,
    starting: Instant,
    started: Instant,
) -> OutageReport<K> {
    let mut outage_answers = 0;
    let mut max_outage_latency = Duration::ZERO;
    let mut first_refusal: Option<Instant> = None;
    let mut recovered: Option<Instant> = None;
    let mut acknowledged = Vec::new();
    for answer in answers {
        let latency = answer.finished - answer.started;
        let during_outage = answer.finished > stopping && answer.started < starting;
        if during_outage {
            outage_answers += 1;
            max_outage_latency = max_outage_latency.max(latency);
            assert!(
                latency < OUTAGE_ANSWER_LIMIT,
                "an answer took {latency:?} while the server was down: {:?}",
                answer.outcome
            );
        }
        match answer.outcome {
            Outcome::Acknowledged(key) => {
                assert!(
                    !(answer.started > stopped && answer.finished < starting),
                    "a write was acknowledged while the server was down"
                );
                if answer.started >= started {
                    recovered = Some(recovered.map_or(answer.finished, |r| r.min(answer.finished)));
                }
                acknowledged.push(key);
            }
            Outcome::Refused(refusal) => {
                assert!(
                    refusal.expected,
                    "a write was refused in a way the service does not promise: {}",
                    refusal.answer
                );
                if answer.finished > stopping {
                    first_refusal =
                        Some(first_refusal.map_or(answer.finished, |f| f.min(answer.finished)));
                }
            }
        }
    }
    let first_refusal = first_refusal.expect("writes were refused while the server was down");
    let first_refusal_after_stop = first_refusal.saturating_duration_since(stopped);
    assert!(
        first_refusal_after_stop < OUTAGE_ANSWER_LIMIT,
        "the first refusal came {first_refusal_after_stop:?} after the server exited"
    );
    let recovered = recovered.expect("writes were acknowledged after the restart");
    OutageReport {
        acknowledged,
        outage_answers,
        max_outage_latency,
        first_refusal_after_stop,
        recovery: recovered - started,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes under load until `target` writes are acknowledged, then `kill -9`s `server`.
///
/// `writers` tasks each call `write` in a loop. `write` returns `Some(acknowledgement)` for a
/// write the service confirmed and `None` once a request fails because the process is gone,
/// which ends that task; it asserts on any other answer. Returns every acknowledgement, for the
/// caller to look up after restarting the service: the durability check of each service.
pub async fn acknowledged_until_killed<T, W, Fut>(
    server: &mut ServiceProcess,
    writers: usize,
    target: usize,
    write: W,
) -> Vec<T>
where
    T: Send + 'static,
    W: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<T>> + Send + 'static,
{
    use std::sync::Mutex;
    let write = Arc::new(write);
    let acknowledged: Arc<Mutex<Vec<T>>> = Arc::default();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (write, acknowledged) = (write.clone(), acknowledged.clone());
            tokio::spawn(async move {
                while let Some(acknowledgement) = write().await {
                    acknowledged
                        .lock()
                        .expect("no writer panics holding the lock")
                        .push(acknowledgement);
                }
            })
        })
        .collect();
    eventually_within(Duration::from_secs(60), || async {
        acknowledged
            .lock()
            .map_or(true, |done| done.len() >= target)
    })
    .await;
    server.kill();
    for task in tasks {
        task.await.expect("a writer failed");
    }
    let mut acknowledged = acknowledged.lock().expect("the writers are done");
    std::mem::take(&mut *acknowledged)
}

/// A TCP proxy between a service and a real server, that a test can cut and restore: the
/// backend "dies" for the service while the real server keeps running for everyone else.
pub struct FaultProxy {
    addr: std::net::SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
    /// Connections being forwarded; [`cut`](FaultProxy::cut) waits until there are none.
    forwarding: Arc<tokio::sync::watch::Sender<usize>>,
    /// Connections refused while cut, so a test can wait for a client's attempts.
    refused: Arc<tokio::sync::watch::Sender<usize>>,
}

impl FaultProxy {
    /// Starts a proxy on `127.0.0.1:0` forwarding to `target` (`host:port`).
    pub async fn start(target: String) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy binds");
        let addr = listener.local_addr().expect("proxy has an address");
        let (up, watch) = tokio::sync::watch::channel(true);
        let forwarding = Arc::new(tokio::sync::watch::Sender::new(0_usize));
        let counter = forwarding.clone();
        let refused = Arc::new(tokio::sync::watch::Sender::new(0_usize));
        let refusals = refused.clone();
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                // Counted before looking at `up`: a `cut` that has not seen this connection
                // counted is one this connection sees.
                counter.send_modify(|open| *open += 1);
                if !*watch.borrow() {
                    counter.send_modify(|open| *open -= 1);
                    refusals.send_modify(|refused| *refused += 1);
                    continue; // Dropping the socket refuses the connection.
                }
                let (target, watch, counter) = (target.clone(), watch.clone(), counter.clone());
                tokio::spawn(async move {
                    forward(inbound, &target, watch).await;
                    counter.send_modify(|open| *open -= 1);
                });
            }
        });
        FaultProxy {
            addr,
            up,
            forwarding,
            refused,
        }
    }

    /// Starts a proxy in front of the server `url` names (a storage or broker URL) and returns it
    /// with the same URL pointed at the proxy, ready for `storage.url`.
    pub async fn in_front_of(url: &str) -> (FaultProxy, String) {
        let mut parsed = url::Url::parse(url).expect("server URLs parse");
        let host = parsed
            .host_str()
            .expect("server URLs name a host")
            .to_owned();
        let port = parsed
            .port_or_known_default()
            .expect("server URLs have a port");
        let proxy = FaultProxy::start(format!("{host}:{port}")).await;
        parsed
            .set_port(Some(proxy.addr().port()))
            .expect("server URLs take a port");
        (proxy, parsed.to_string())
    }

    /// The proxy's address, to put in a URL instead of the server's.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones; returns once every connection is
    /// closed, so that nothing sent after it reaches the server.
    pub async fn cut(&self) {
        let _ = self.up.send(false);
        let _ = self
            .forwarding
            .subscribe()
            .wait_for(|open| *open == 0)
            .await;
    }

    /// Returns once the proxy has refused `count` connections while cut.
    pub async fn refused_at_least(&self, count: usize) {
        let _ = self
            .refused
            .subscribe()
            .wait_for(|refused| *refused >= count)
            .await;
    }

    /// Accepts and forwards connections again.
    pub fn restore(&self) {
        let _ = self.up.send(true);
    }
}

/// Pipes `inbound` to `target` until either side closes or the proxy is cut; both sockets
/// are closed on return.
async fn forward(
    mut inbound: tokio::net::TcpStream,
    target: &str,
    mut up: tokio::sync::watch::Receiver<bool>,
) {
    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}
