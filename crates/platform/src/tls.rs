//! TLS for the API listener: rustls with the `ring` provider, HTTP/2 and HTTP/1.1 by ALPN.
//!
//! The certificate comes from `tls.cert` + `tls.key`, or, when both are unset, is a self-signed
//! one for `localhost`, `127.0.0.1` and `::1`, generated once into `tls.self_signed_dir` and
//! reused on later starts so the clients that were handed it keep trusting it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsSettings;

/// Why TLS could not be set up. A start-up error: the service does not serve without it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Only one of `tls.cert` and `tls.key` is set.
    #[error("set both tls.cert and tls.key, or neither (for a generated self-signed certificate)")]
    Incomplete,
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A file holds no usable PEM certificate or key.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the certificate and key (e.g. they do not match).
    #[error("certificate rejected: {0}")]
    Rustls(#[from] rustls::Error),
    /// The self-signed certificate could not be generated.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Where the certificate and key the listener serves are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePaths {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Whether the platform generated them (self-signed).
    pub self_signed: bool,
}

/// The certificate files for service `service`: the configured ones, or the self-signed pair in
/// `self_signed_dir`, generated now when absent.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("tls-doc-{}", std::process::id()));
/// let settings = platform::config::TlsSettings {
///     enabled: true,
///     self_signed_dir: dir.clone(),
///     ..Default::default()
/// };
/// let paths = platform::tls::certificate_paths("demo", &settings).unwrap();
/// assert!(paths.self_signed && paths.cert.ends_with("demo.crt"));
/// // A second call reuses the files.
/// let pem = std::fs::read(&paths.cert).unwrap();
/// platform::tls::certificate_paths("demo", &settings).unwrap();
/// assert_eq!(std::fs::read(&paths.cert).unwrap(), pem);
/// # std::fs::remove_dir_all(dir).unwrap();
/// ```
pub fn certificate_paths(
    service: &str,
    settings: &TlsSettings,
) -> Result<CertificatePaths, TlsError> {
    match (&settings.cert, &settings.key) {
        (Some(cert), Some(key)) => Ok(CertificatePaths {
            cert: cert.clone(),
            key: key.clone(),
            self_signed: false,
        }),
        (None, None) => {
            let dir = &settings.self_signed_dir;
            let paths = CertificatePaths {
                cert: dir.join(format!("{service}.crt")),
                key: dir.join(format!("{service}.key")),
                self_signed: true,
            };
            if !(paths.cert.is_file() && paths.key.is_file()) {
                generate_self_signed(&paths)?;
                tracing::info!(cert = %paths.cert.display(), "Generated a self-signed certificate.");
            }
            Ok(paths)
        }
        _ => Err(TlsError::Incomplete),
    }
}

fn generate_self_signed(paths: &CertificatePaths) -> Result<(), TlsError> {
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let mut params = rcgen::CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(3650);
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    if let Some(dir) = paths.cert.parent() {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    write_private(&paths.key, key.serialize_pem().as_bytes())?;
    std::fs::write(&paths.cert, cert.pem()).map_err(|source| TlsError::Io {
        path: paths.cert.clone(),
        source,
    })
}

/// Writes `contents` readable by the owner only: it is a private key.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let io_error = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).map_err(io_error)?;
    file.write_all(contents).map_err(io_error)
}

/// The rustls configuration the API listener serves with: the `ring` provider, TLS 1.2 and 1.3,
/// ALPN `h2` then `http/1.1`.
pub fn server_config(paths: &CertificatePaths) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = CertificateDer::pem_file_iter(&paths.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| pem_error(&paths.cert, error))?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: paths.cert.clone(),
            reason: "no CERTIFICATE block".to_owned(),
        });
    }
    let key =
        PrivateKeyDer::from_pem_file(&paths.key).map_err(|error| pem_error(&paths.key, error))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn pem_error(path: &Path, error: rustls_pki_types::pem::Error) -> TlsError {
    match error {
        rustls_pki_types::pem::Error::Io(source) => TlsError::Io {
            path: path.to_path_buf(),
            source,
        },
        other => TlsError::Pem {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path) -> TlsSettings {
        TlsSettings {
            enabled: true,
            self_signed_dir: dir.to_path_buf(),
            ..TlsSettings::default()
        }
    }

    #[test]
    fn generated_certificate_loads_and_its_key_is_private() {
        let dir = std::env::temp_dir().join(format!("platform-tls-{}", uuid::Uuid::new_v4()));
        let paths = certificate_paths("demo", &settings(&dir)).unwrap();
        let config = server_config(&paths).unwrap();
        assert_eq!(config.alpn_protocols[0], b"h2");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&paths.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn one_file_without_the_other_is_an_error() {
        let settings = TlsSettings {
            cert: Some(PathBuf::from("/etc/ssl/cert.pem")),
            ..TlsSettings::default()
        };
        assert!(matches!(
            certificate_paths("demo", &settings),
            Err(TlsError::Incomplete)
        ));
    }

    #[test]
    fn a_file_without_pem_is_an_error_that_names_it() {
        let dir = std::env::temp_dir().join(format!("platform-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("bad.crt");
        std::fs::write(&cert, "not a certificate").unwrap();
        let paths = CertificatePaths {
            cert: cert.clone(),
            key: dir.join("missing.key"),
            self_signed: false,
        };
        let error = server_config(&paths).unwrap_err();
        assert!(error.to_string().contains("bad.crt"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
