//! TLS: the generated certificate verifies for the names it claims, only clients that trust it
//! get in, HTTP/2 is negotiated, plain HTTP must be asked for, and configured files are served.

use platform::testing::client_trusting;

use crate::helpers::spawn_with;

#[tokio::test]
async fn the_generated_certificate_verifies_for_localhost_and_the_loopback_address() {
    let app = spawn_with("memory:", &[]).await;
    assert!(
        app.app.address.starts_with("https://127.0.0.1:"),
        "{}",
        app.app.address
    );
    let pem = app
        .app
        .certificate
        .as_deref()
        .expect("a certificate was generated");
    assert!(String::from_utf8_lossy(pem).starts_with("-----BEGIN CERTIFICATE-----"));

    assert_eq!(app.app.get("/livez").await.status(), 200, "by IP address");
    let port = app.app.address.rsplit(':').next().unwrap();
    let by_name = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap())
        .resolve("localhost", format!("127.0.0.1:{port}").parse().unwrap())
        .build()
        .unwrap();
    let response = by_name
        .get(format!("https://localhost:{port}/livez"))
        .send()
        .await
        .expect("the certificate is valid for localhost");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn() {
    let app = spawn_with("memory:", &[]).await;
    let response = app.app.get("/livez").await;
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_refused() {
    let app = spawn_with("memory:", &[]).await;
    // Another service's self-signed certificate: a valid certificate, just not this one.
    let other = spawn_with("memory:", &[]).await;
    let stranger = client_trusting(other.app.certificate.as_deref());
    let error = stranger
        .get(app.app.url("/livez"))
        .send()
        .await
        .expect_err("the handshake fails");
    assert!(error.is_connect(), "{error:?}");
}

#[tokio::test]
async fn plain_http_on_the_tls_port_gets_no_answer() {
    let app = spawn_with("memory:", &[]).await;
    let plain = app.app.address.replacen("https://", "http://", 1);
    let result = reqwest::Client::new()
        .get(format!("{plain}/livez"))
        .send()
        .await;
    assert!(result.is_err(), "{result:?}");
    // The listener survives the garbage.
    assert_eq!(app.app.get("/livez").await.status(), 200);
}

#[tokio::test]
async fn plain_http_is_served_only_when_asked_for() {
    let app = spawn_with("memory:", &[("tls.enabled", "false")]).await;
    assert!(
        app.app.address.starts_with("http://"),
        "{}",
        app.app.address
    );
    assert!(app.app.certificate.is_none());
    assert_eq!(app.store("foo").await.len(), 64);
}

#[tokio::test]
async fn configured_certificate_files_are_served() {
    // A certificate made elsewhere, handed to the service as files.
    let dir = platform::testing::temp_path("tls");
    let settings = platform::config::TlsSettings {
        enabled: true,
        self_signed_dir: dir.clone(),
        ..Default::default()
    };
    let paths = platform::tls::certificate_paths("issued", &settings).unwrap();
    let (cert, key) = (paths.cert.to_string_lossy(), paths.key.to_string_lossy());
    let app = spawn_with("memory:", &[("tls.cert", &cert), ("tls.key", &key)]).await;
    assert_eq!(
        app.app.certificate.as_deref(),
        Some(std::fs::read(&paths.cert).unwrap().as_slice())
    );
    assert_eq!(app.app.get("/livez").await.status(), 200);
    std::fs::remove_dir_all(dir).unwrap();
}
