//! TLS for the load generator's client: rustls with the `ring` provider, trusting exactly one
//! certificate (the server's self-signed one) and offering ALPN `http/1.1` only, so the HTTP/1.1
//! client in `http` runs unchanged over it.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// A client configuration that trusts only the PEM certificate(s) in `cert`.
pub fn client_config(cert: &Path) -> anyhow::Result<Arc<ClientConfig>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read a PEM certificate from {}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no CERTIFICATE block", cert.display());
    }
    let mut roots = RootCertStore::empty();
    for der in certs {
        roots
            .add(der)
            .with_context(|| format!("{} is not a usable certificate", cert.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("the ring provider supports the default TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::ScratchDir;

    #[test]
    fn a_generated_certificate_is_trusted_and_only_http1_is_offered() {
        let scratch = ScratchDir::new("loadgen-tls-test").expect("scratch dir");
        let paths = crate::baseline::self_signed(scratch.path(), "demo").expect("generated");
        let config = client_config(&paths.cert).expect("a PEM certificate");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);

        let error = client_config(&paths.key).expect_err("a key is not a certificate");
        assert!(error.to_string().contains("demo.key"), "{error}");
        let missing = scratch.path().join("missing.crt");
        assert!(client_config(&missing).is_err());
    }
}
