use std::net::SocketAddr;
use std::time::Duration;

use super::client::*;
use super::*;
use crate::scenario::{Account, Kind, Service};
use crate::target::ScratchDir;

/// The baseline serving TLS on a free port with a certificate generated into `dir` as
/// `name.crt`; returns its address and the certificate.
async fn tls_baseline(dir: &std::path::Path, name: &str) -> (SocketAddr, std::path::PathBuf) {
    let paths = crate::baseline::self_signed(dir, name).expect("certificate");
    let config = platform::tls::server_config(&paths).expect("server config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(crate::baseline::serve_tls(
        listener,
        config,
        crate::baseline::router(),
    ));
    (addr, paths.cert)
}

fn short_load() -> Load {
    Load {
        connections: 2,
        warmup: Duration::from_millis(50),
        duration: Duration::from_millis(300),
    }
}

#[tokio::test]
async fn messages_scenarios_run_over_tls_against_the_baseline() {
    let scratch = ScratchDir::new("loadgen-http-test").expect("scratch dir");
    let (addr, cert) = tls_baseline(scratch.path(), "baseline").await;
    let tls = crate::tls::client_config(&cert).expect("client config");
    let endpoints = [
        Endpoint::from_addr(addr).with_tls(tls.clone()),
        Endpoint::from_url(&format!("https://localhost:{}", addr.port()), Some(tls))
            .await
            .expect("an https URL"),
    ];
    for endpoint in endpoints {
        for &kind in Service::Messages.kinds() {
            let scenario = Service::Messages
                .scenario(kind, 20, &Account::default())
                .expect("scenario");
            let summary = run(&endpoint, scenario.as_ref(), short_load(), &[])
                .await
                .expect("a run");
            assert_eq!(summary.errors, 0, "{kind:?}: {:?}", summary.error_kinds);
            assert!(summary.requests > 0, "{kind:?} sent nothing");
        }
    }
}

/// A plain server of `router` on a free port.
async fn plain(router: axum::Router) -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    Endpoint::from_addr(addr)
}

#[tokio::test]
async fn an_open_loop_run_sends_the_rate_and_calls_back_every_second() {
    let endpoint = plain(crate::baseline::router()).await;
    let scenario = Service::Hello
        .scenario(Kind::Mix, 20, &Account::default())
        .expect("scenario");
    let load = RateLoad {
        connections: 4,
        rate: 400.0,
        duration: Duration::from_millis(2500),
    };
    let mut seconds = Vec::new();
    let summary = run_at_rate(
        &endpoint,
        scenario.as_ref(),
        load,
        &[],
        |status| (200..400).contains(&status),
        &mut |elapsed| seconds.push(elapsed.as_secs()),
    )
    .await
    .expect("a run");
    assert_eq!(summary.errors, 0, "{:?}", summary.error_kinds);
    // Exactly the slots due in 2.5 s at 400/s, each answered once.
    assert_eq!(summary.requests, 1000);
    assert!((summary.rps - 400.0).abs() < 1e-9, "{}", summary.rps);
    assert_eq!(seconds, [0, 1, 2]);
}

#[tokio::test]
async fn requests_a_slow_server_never_gets_count_as_unsent() {
    let slow = axum::Router::new().route(
        "/hello/{username}",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            "slow"
        })
        .put(|| async { axum::http::StatusCode::NO_CONTENT }),
    );
    let endpoint = plain(slow).await;
    let scenario = Service::Hello
        .scenario(Kind::Get, 1, &Account::default())
        .expect("scenario");
    // One connection answers about 10 GETs a second; 100 fall due in a second, and the
    // grace after the end lets about 10 more out.
    let load = RateLoad {
        connections: 1,
        rate: 100.0,
        duration: Duration::from_secs(1),
    };
    let summary = run_at_rate(
        &endpoint,
        scenario.as_ref(),
        load,
        &[],
        |status| (200..300).contains(&status),
        &mut |_| {},
    )
    .await
    .expect("a run");
    assert_eq!(summary.requests, 100);
    let unsent = summary.error_kinds.get("unsent").copied().unwrap_or(0);
    assert!((60..=90).contains(&unsent), "{:?}", summary.error_kinds);
    assert_eq!(summary.errors, unsent);
    // Latency counts from when a request fell due, so the backlog shows: the last ones
    // sent waited over a second.
    assert!(summary.max_ms > 1000.0, "max {} ms", summary.max_ms);
}

#[tokio::test]
async fn a_server_with_another_certificate_is_refused() {
    let scratch = ScratchDir::new("loadgen-http-test").expect("scratch dir");
    let (addr, _cert) = tls_baseline(scratch.path(), "server").await;
    let stranger = crate::baseline::self_signed(scratch.path(), "stranger").expect("cert");
    let tls = crate::tls::client_config(&stranger.cert).expect("client config");
    let endpoint = Endpoint::from_addr(addr).with_tls(tls);
    let scenario = Service::Messages
        .scenario(Kind::Post, 1, &Account::default())
        .expect("scenario");
    let error = run(&endpoint, scenario.as_ref(), short_load(), &[])
        .await
        .expect_err("an untrusted certificate");
    assert!(format!("{error:#}").contains("TLS handshake"), "{error:#}");
}

#[tokio::test]
async fn urls_choose_plain_or_tls() {
    let scratch = ScratchDir::new("loadgen-http-test").expect("scratch dir");
    let cert = crate::baseline::self_signed(scratch.path(), "demo").expect("cert");
    let tls = crate::tls::client_config(&cert.cert).expect("client config");
    let plain = Endpoint::from_url("http://127.0.0.1:8081", None)
        .await
        .expect("http");
    assert!(plain.tls.is_none());
    let secure = Endpoint::from_url("https://[::1]", Some(tls.clone()))
        .await
        .expect("https");
    assert_eq!(secure.addr, "[::1]:443".parse().expect("address"));
    assert!(secure.tls.is_some());
    for (url, tls) in [
        ("https://127.0.0.1:8082", None),
        ("http://127.0.0.1:8081", Some(tls.clone())),
        ("ftp://127.0.0.1", None),
        ("https://127.0.0.1:8082/messages", Some(tls)),
    ] {
        assert!(Endpoint::from_url(url, tls).await.is_err(), "{url}");
    }
}
