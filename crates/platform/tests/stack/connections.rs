//! What a hostile client can hold on a listener: connections that never finish their head (the
//! first, or a later one on a keep-alive connection) are cut at `server.header_read_timeout`,
//! and past `server.max_connections` new connections are closed at once and counted, while a
//! normal client is served throughout. A request that takes longer than that deadline, in its
//! handler or in its body, is not cut by it.

use std::sync::Arc;
use std::time::Duration;

use platform::testing::{TestApp, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::misbehaving;

/// A request head sent one byte at a time, never finished within the deadline.
const SLOW_HEAD: &[u8] =
    b"GET /ok HTTP/1.1\r\nHost: slow\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// Well past the 1 s deadline these tests set, so a busy machine cannot make it fail.
const CUT_WITHIN: Duration = Duration::from_secs(15);

/// A client that opens a connection and sends `head` a byte every 100 ms (or nothing, for an
/// empty `head`), until the server closes the connection. Returns how long it stayed open.
async fn hold_slowly(address: std::net::SocketAddr, head: &'static [u8]) -> Duration {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).await.unwrap();
    send_slowly(&mut stream, head, started).await;
    started.elapsed()
}

/// Sends `head` on `stream` a byte every 100 ms (or nothing, for an empty `head`) until the
/// server closes the connection, which must come within [`CUT_WITHIN`] of `started` and before
/// the whole head went out. No answer may come first.
async fn send_slowly(stream: &mut TcpStream, head: &[u8], started: Instant) {
    let mut sent = 0;
    let mut buffer = [0u8; 512];
    loop {
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                // Closed (or reset): what the deadline does.
                Ok(0) | Err(_) => break,
                Ok(n) => panic!("an unfinished head was answered: {:?}", String::from_utf8_lossy(&buffer[..n])),
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                assert!(started.elapsed() < CUT_WITHIN, "a slow head was never cut");
                if sent < head.len() {
                    if stream.write_all(&head[sent..=sent]).await.is_err() {
                        break;
                    }
                    sent += 1;
                }
            }
        }
    }
    assert!(
        head.is_empty() || sent < head.len(),
        "the whole slow head went out before the cut"
    );
}

/// The misbehaving service with a 1 s header-read deadline.
async fn with_a_one_second_deadline(release: Arc<Notify>, entered: Arc<Notify>) -> TestApp {
    TestApp::spawn(
        &misbehaving(release, entered),
        &[("server.header_read_timeout", "1s")],
    )
    .await
}

fn api_addr(app: &TestApp) -> std::net::SocketAddr {
    app.address
        .rsplit('/')
        .next()
        .and_then(|authority| authority.parse().ok())
        .expect("the API address is host:port")
}

/// The value of the counter or gauge `metric` for the API listener, from `/metrics`.
async fn api_metric(app: &TestApp, metric: &str) -> f64 {
    let text = app.admin_get("/metrics").await.text().await.unwrap();
    let prefix = format!("{metric}{{listener=\"api\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

async fn slow_clients_are_cut_at_the_deadline(tls: bool, clients: usize, head: &'static [u8]) {
    let (release, entered) = Default::default();
    let app = TestApp::spawn(
        &misbehaving(release, entered),
        &[
            ("server.header_read_timeout", "1s"),
            ("tls.enabled", if tls { "true" } else { "false" }),
        ],
    )
    .await;
    let address = api_addr(&app);
    let slow: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(hold_slowly(address, head)))
        .collect();
    // A normal client is served while they hang on.
    for _ in 0..20 {
        assert_eq!(app.get("/ok").await.status(), 200);
        tokio::task::yield_now().await;
    }
    for (n, client) in slow.into_iter().enumerate() {
        let open_for = tokio::time::timeout(CUT_WITHIN, client)
            .await
            .unwrap_or_else(|_| panic!("slow client {n} was never cut"))
            .unwrap();
        // The server's deadline starts at its accept, after the client started counting.
        assert!(
            open_for >= Duration::from_secs(1),
            "client {n} cut early, after {open_for:?}"
        );
    }
    assert_eq!(app.get("/ok").await.status(), 200, "still serving");
    let timeouts = api_metric(&app, "http_server_header_timeouts_total").await;
    assert!(
        timeouts >= clients as f64,
        "{timeouts} header timeouts counted for {clients} clients"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_slow_headers_are_cut_at_the_deadline_while_a_normal_client_is_served() {
    slow_clients_are_cut_at_the_deadline(false, 1000, SLOW_HEAD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_send_nothing_are_cut_at_the_deadline() {
    slow_clients_are_cut_at_the_deadline(false, 200, b"").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_stalled_handshake_is_cut_at_the_deadline() {
    // A client that connects and never sends its ClientHello.
    slow_clients_are_cut_at_the_deadline(true, 200, b"").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_a_new_connection_is_closed_at_once_and_counted() {
    let (release, entered) = Default::default();
    let app = TestApp::spawn(
        &misbehaving(release, entered),
        &[
            ("server.max_connections", "20"),
            ("server.header_read_timeout", "60s"),
        ],
    )
    .await;
    let address = api_addr(&app);
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(address).await.unwrap());
    }
    eventually(|| async { api_metric(&app, "http_server_open_connections").await == 20.0 }).await;

    let mut refused = TcpStream::connect(address).await.unwrap();
    // Closed before anything is read: the request gets no answer, only the end of the stream.
    let _ = refused
        .write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(CUT_WITHIN, refused.read_to_end(&mut answer))
        .await
        .expect("the connection past the limit is closed");
    assert!(
        read.is_err() || answer.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(
        api_metric(&app, "http_server_refused_connections_total").await,
        1.0
    );

    // Room again once a connection goes.
    drop(held.pop());
    eventually(|| async { api_metric(&app, "http_server_open_connections").await == 19.0 }).await;
    let mut fresh = TcpStream::connect(address).await.unwrap();
    fresh
        .write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    fresh.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_that_never_sends_a_request_is_cut_at_the_deadline() {
    let app = with_a_one_second_deadline(Default::default(), Default::default()).await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(api_addr(&app)).await.unwrap();
    // HTTP/2 with prior knowledge: the preface and an empty SETTINGS frame, then no stream.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    // The server's own SETTINGS and acknowledgement come back; then the connection must end.
    let mut frames = Vec::new();
    let _ = tokio::time::timeout(CUT_WITHIN, stream.read_to_end(&mut frames))
        .await
        .expect("an HTTP/2 connection without a request was never cut");
    assert!(!frames.is_empty(), "the server spoke HTTP/2 first");
    assert!(started.elapsed() >= Duration::from_secs(1), "cut early");
    assert_eq!(app.get("/ok").await.status(), 200, "still serving");
}

/// Sends one whole `GET path` on `stream` and reads the answer up to the end of its head plus
/// `body_part`, which must come next.
async fn request_on(stream: &mut TcpStream, path: &str, body_part: &str) -> String {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if text
            .split_once("\r\n\r\n")
            .is_some_and(|(_, body)| body.contains(body_part))
        {
            return text;
        }
        let n = tokio::time::timeout(CUT_WITHIN, stream.read(&mut buffer))
            .await
            .expect("the answer comes")
            .unwrap();
        assert!(n > 0, "closed before the answer: {text:?}");
        answer.extend_from_slice(&buffer[..n]);
    }
}

/// Waits until a connection that sends nothing is closed by the deadline, so at least one
/// whole deadline has passed for every connection opened before this call.
async fn a_deadline_passes(address: std::net::SocketAddr) {
    let open_for = tokio::time::timeout(CUT_WITHIN, hold_slowly(address, b""))
        .await
        .expect("an idle connection is cut");
    assert!(
        open_for >= Duration::from_secs(1),
        "cut early, after {open_for:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_second_head_on_a_keep_alive_connection_is_cut_at_the_deadline() {
    let app = with_a_one_second_deadline(Default::default(), Default::default()).await;
    let before = api_metric(&app, "http_server_header_timeouts_total").await;
    let mut stream = TcpStream::connect(api_addr(&app)).await.unwrap();
    // The deadline runs from the first answer, which the server finishes after this.
    let started = Instant::now();
    let first = request_on(&mut stream, "/ok", "ok").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // The second head, a byte every 100 ms: 8 s in all, far past the deadline.
    send_slowly(&mut stream, SLOW_HEAD, started).await;
    let open_for = started.elapsed();
    assert!(
        open_for >= Duration::from_secs(1),
        "cut early, after {open_for:?}"
    );
    assert!(api_metric(&app, "http_server_header_timeouts_total").await > before);
    assert_eq!(app.get("/ok").await.status(), 200, "still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_deadline() {
    let app = with_a_one_second_deadline(Default::default(), Default::default()).await;
    let mut stream = TcpStream::connect(api_addr(&app)).await.unwrap();
    // The connection is idle from the server's answer, which comes after this.
    let asked = Instant::now();
    request_on(&mut stream, "/ok", "ok").await;
    let mut rest = Vec::new();
    tokio::time::timeout(CUT_WITHIN, stream.read_to_end(&mut rest))
        .await
        .expect("an idle keep-alive connection is closed")
        .unwrap();
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    assert!(asked.elapsed() >= Duration::from_secs(1), "closed early");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_slower_than_the_deadline_is_not_cut_by_it() {
    let (release, entered) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let app = with_a_one_second_deadline(release.clone(), entered.clone()).await;
    let address = api_addr(&app);
    let held = tokio::spawn(async move {
        let mut stream = TcpStream::connect(address).await.unwrap();
        request_on(&mut stream, "/hold", "released").await
    });
    entered.notified().await;
    a_deadline_passes(address).await;
    release.notify_one();
    let answer = held.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_streaming_longer_than_the_deadline_is_not_cut_by_it() {
    let (release, entered) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let app = with_a_one_second_deadline(release.clone(), entered).await;
    let address = api_addr(&app);
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = request_on(&mut stream, "/drip", "first,").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    a_deadline_passes(address).await;
    release.notify_one();
    let mut rest = Vec::new();
    let mut buffer = [0u8; 512];
    while !String::from_utf8_lossy(&rest).contains("rest") {
        let n = tokio::time::timeout(CUT_WITHIN, stream.read(&mut buffer))
            .await
            .expect("the rest of the body comes")
            .unwrap();
        assert!(n > 0, "cut mid-body: {:?}", String::from_utf8_lossy(&rest));
        rest.extend_from_slice(&buffer[..n]);
    }
    // And the connection is still good for another request.
    let next = request_on(&mut stream, "/ok", "ok").await;
    assert!(next.starts_with("HTTP/1.1 200"), "{next}");
}
