//! TLS for the HTTPS listener (certificates chosen by SNI, TLS 1.2 and 1.3,
//! ALPN h2 and http/1.1) and for https:// backends (a configurable CA).

use std::{collections::HashMap, path::Path, sync::Arc};

use rustls::{
    ClientConfig, RootCertStore, ServerConfig,
    crypto::CryptoProvider,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use crate::config::{Backend, TlsListener};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {message}; check the path and that it holds PEM data")]
    Pem {
        what: &'static str,
        path: String,
        message: String,
    },
    #[error("certificate {path}: {message}")]
    Key { path: String, message: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("{0}; use a DNS name or an IP address in the backend URL")]
    ServerName(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_error(what: &'static str, path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        what,
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error("certificate file", path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificate file", path, e))?;
    if certs.is_empty() {
        return Err(pem_error("certificate file", path, "no CERTIFICATE block"));
    }
    Ok(certs)
}

/// Picks the certificate by SNI name, falling back to the first one.
#[derive(Debug)]
struct SniResolver {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello
            .server_name()
            .and_then(|name| self.by_name.get(&name.to_ascii_lowercase()));
        Some(chosen.unwrap_or(&self.default).clone())
    }
}

/// The server side of the HTTPS listener.
pub fn server_config(listener: &TlsListener) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let mut by_name = HashMap::new();
    let mut default = None;
    for c in &listener.certificates {
        let chain = load_certs(&c.cert)?;
        let key =
            PrivateKeyDer::from_pem_file(&c.key).map_err(|e| pem_error("key file", &c.key, e))?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::Key {
                path: c.key.display().to_string(),
                message: format!("unusable private key: {e}"),
            })?;
        let certified = Arc::new(CertifiedKey::new(chain, signing));
        certified.keys_match().map_err(|e| TlsError::Key {
            path: c.cert.display().to_string(),
            message: format!("does not match key {}: {e}", c.key.display()),
        })?;
        for name in &c.server_names {
            by_name.insert(name.clone(), certified.clone());
        }
        default.get_or_insert(certified);
    }
    let default = default.expect("config validation requires a certificate");
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { by_name, default }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The system's CA certificates, found where the distribution keeps them
/// (rustls-native-certs: Debian's and RHEL's bundles, `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` when set), read once. Certificates that do not parse are
/// skipped; none found means nothing is trusted by default.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<CertificateDer<'static>>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "system CA certificates: skipped");
        }
        if found.certs.is_empty() {
            tracing::warn!(
                "no system CA certificates found: https backends need ca_file (or install the distribution's CA bundle)"
            );
        }
        found.certs
    })
}

/// The client side for one backend: its CA file, or the system's CAs.
pub fn client_config(backend: &Backend) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    if backend.scheme == "https" {
        match &backend.ca_file {
            Some(path) => {
                for cert in load_certs(path)? {
                    roots.add(cert).map_err(|e| pem_error("CA file", path, e))?;
                }
            }
            None => {
                roots.add_parsable_certificates(system_roots().iter().cloned());
            }
        }
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
