//! TLS for the HTTPS listener (certificates chosen by SNI, TLS 1.2 and 1.3,
//! ALPN h2 and http/1.1, client certificates per certificate) and for
//! https:// backends (a configurable CA).

use std::{collections::HashMap, path::Path, sync::Arc};

use rustls::{
    ClientConfig, RootCertStore, ServerConfig,
    crypto::CryptoProvider,
    server::{Acceptor, ClientHello, ResolvesServerCert, danger::ClientCertVerifier},
    sign::CertifiedKey,
};
use rustls_pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, pem::PemObject,
};
use tokio::net::TcpStream;
use tokio_rustls::{LazyConfigAcceptor, TlsAcceptor, server::TlsStream};

use crate::{
    client_cert::{ClientCert, Requested, Trust},
    config::{Backend, CertSource, Certificate, ClientAuth, ClientIdentity, TlsListener},
};

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
    /// A client-certificate setting: `setting` names it, `fix` says what to do.
    #[error("{setting} {path}: {message}; {fix}")]
    Setting {
        setting: String,
        path: String,
        message: String,
        fix: &'static str,
    },
}

const CA_FIX: &str = "give a PEM file of the CA certificates client certificates chain to";
const CRL_FIX: &str = "give CRL files (PEM or DER) issued by the CAs of client_ca_file";

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

/// The server side of the HTTPS listener: one rustls config when no
/// certificate asks for client certificates (SNI picks the certificate in
/// the handshake), else one per certificate, picked by SNI before the
/// handshake (each has its own client-certificate verifier and CAs).
pub struct ServerTls {
    shared: Option<Arc<ServerConfig>>,
    per_certificate: Vec<(Arc<ServerConfig>, Arc<Trust>)>,
    by_name: HashMap<String, usize>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ServerTls({} certificate(s))",
            self.per_certificate.len().max(1)
        )
    }
}

impl ServerTls {
    /// The TLS handshake, and the client's certificate if it sent one.
    /// A refused handshake ends with a graceful close (`refused`).
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<(TlsStream<TcpStream>, Option<Arc<ClientCert>>)> {
        if let Some(config) = &self.shared {
            let tls = TlsAcceptor::from(config.clone())
                .accept(stream)
                .into_fallible()
                .await;
            return match tls {
                Ok(tls) => Ok((tls, None)),
                Err((err, io)) => Err(refused(err, io).await),
            };
        }
        let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
        let chosen = start
            .client_hello()
            .server_name()
            .and_then(|name| self.by_name.get(&name.to_ascii_lowercase()))
            .copied()
            .unwrap_or(0);
        let (config, trust) = &self.per_certificate[chosen];
        let tls = match start.into_stream(config.clone()).into_fallible().await {
            Ok(tls) => tls,
            Err((err, io)) => return Err(refused(err, io).await),
        };
        let cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| ClientCert::new(chain, trust))
            .map(Arc::new);
        Ok((tls, cert))
    }
}

/// How long a refused handshake's connection is read from before it is
/// closed.
const LINGER: std::time::Duration = std::time::Duration::from_millis(500);

/// Closes the connection of a refused handshake so that the client reads
/// the alert (rustls wrote it already): the write side is shut (a FIN
/// after the alert), then what the client still sends is read and
/// dropped, briefly. Closing with unread bytes (a TLS 1.3 client may have
/// sent its request right after its certificate) would answer a reset,
/// and a client that gets it may never read the alert.
async fn refused(err: std::io::Error, mut io: TcpStream) -> std::io::Error {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = io.shutdown().await;
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = [0u8; 4096];
        while let Ok(n) = io.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    err
}

fn certified_key(
    provider: &CryptoProvider,
    c: &Certificate,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = load_certs(&c.cert)?;
    let key = PrivateKeyDer::from_pem_file(&c.key).map_err(|e| pem_error("key file", &c.key, e))?;
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
    Ok(certified)
}

fn server_builder(
    provider: Arc<CryptoProvider>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    resolver: Arc<SniResolver>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let mut config = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    }
    .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The server side of the HTTPS listener; every file is read and checked
/// here (at start, on reload and by `edgegw config validate`).
pub fn server_config(listener: &TlsListener) -> Result<Arc<ServerTls>, TlsError> {
    let provider = provider();
    let mut by_name = HashMap::new();
    let mut keys = Vec::new();
    for (i, c) in listener.certificates.iter().enumerate() {
        let certified = certified_key(&provider, c)?;
        for name in &c.server_names {
            by_name.entry(name.clone()).or_insert(i);
        }
        keys.push(certified);
    }
    if listener.certificates.iter().all(|c| c.client_auth.is_off()) {
        let resolver = SniResolver {
            by_name: by_name
                .iter()
                .map(|(n, &i)| (n.clone(), keys[i].clone()))
                .collect(),
            default: keys[0].clone(),
        };
        return Ok(Arc::new(ServerTls {
            shared: Some(server_builder(provider, None, Arc::new(resolver))?),
            per_certificate: Vec::new(),
            by_name: HashMap::new(),
        }));
    }
    let mut per_certificate = Vec::new();
    for (i, (c, key)) in listener.certificates.iter().zip(keys).enumerate() {
        let (verifier, trust) = client_verifier(i, &c.client_auth)?;
        let resolver = SniResolver {
            by_name: HashMap::new(),
            default: key,
        };
        per_certificate.push((
            server_builder(provider.clone(), verifier, Arc::new(resolver))?,
            Arc::new(trust),
        ));
    }
    Ok(Arc::new(ServerTls {
        shared: None,
        per_certificate,
        by_name,
    }))
}

/// The handshake's verifier and the trust kept for policies, for the
/// `i`th listener certificate.
fn client_verifier(
    i: usize,
    auth: &ClientAuth,
) -> Result<(Option<Arc<dyn ClientCertVerifier>>, Trust), TlsError> {
    let setting = |name: &str| format!("tls.certificates[{i}].{name}");
    let (ca_file, crl_files, require) = match auth {
        ClientAuth::Off => return Ok((None, Trust::default())),
        ClientAuth::Request { ca_file, crl_files } => (ca_file.as_deref(), crl_files, false),
        ClientAuth::Require { ca_file, crl_files } => (Some(ca_file.as_path()), crl_files, true),
    };
    let cas = match ca_file {
        Some(path) => load_certs(path).map_err(|e| TlsError::Setting {
            setting: setting("client_ca_file"),
            path: path.display().to_string(),
            message: match e {
                TlsError::Pem { message, .. } => message,
                other => other.to_string(),
            },
            fix: CA_FIX,
        })?,
        None => Vec::new(),
    };
    let mut crls = Vec::new();
    for path in crl_files {
        let bad = |message: String| TlsError::Setting {
            setting: setting("client_crl_files"),
            path: path.display().to_string(),
            message,
            fix: CRL_FIX,
        };
        crls.extend(load_crls(path).map_err(bad)?);
        // Each file on its own, so that the error names the file.
        crate::client_cert::verifier(&cas, crls[crls.len() - 1..].to_vec(), false)
            .map_err(|m| bad(format!("not a usable CRL ({m})")))?;
    }
    let ca_path = ca_file.map(|p| p.display().to_string()).unwrap_or_default();
    let trust = Trust::new(&cas, crls.clone(), require).map_err(|message| TlsError::Setting {
        setting: setting("client_ca_file"),
        path: ca_path.clone(),
        message,
        fix: CA_FIX,
    })?;
    let verifier: Arc<dyn ClientCertVerifier> = if require {
        crate::client_cert::verifier(&cas, crls, true).map_err(|message| TlsError::Setting {
            setting: setting("client_ca_file"),
            path: ca_path,
            message,
            fix: CA_FIX,
        })?
    } else {
        Arc::new(Requested::new(&cas))
    };
    Ok((Some(verifier), trust))
}

/// The CRLs of a file: PEM blocks, or one DER CRL.
fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.starts_with(b"-----BEGIN") {
        let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("bad PEM ({e})"))?;
        if crls.is_empty() {
            return Err("no X509 CRL block".into());
        }
        Ok(crls)
    } else {
        Ok(vec![CertificateRevocationListDer::from(bytes)])
    }
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
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots);
    Ok(match &backend.client_identity {
        None => builder.with_no_client_auth(),
        Some(id) => {
            let (chain, key) = client_identity(id)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsError::Key {
                    path: id.key.display().to_string(),
                    message: format!("the client key does not fit its certificate: {e}"),
                })?
        }
    })
}

/// The certificate chain and key a client presents (mutual TLS).
fn client_identity(
    id: &ClientIdentity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = match &id.cert {
        CertSource::File(path) => load_certs(path)?,
        CertSource::Der(der) => vec![CertificateDer::from(der.to_vec())],
    };
    let key = PrivateKeyDer::from_pem_file(&id.key)
        .map_err(|e| pem_error("client key file", &id.key, e))?;
    Ok((chain, key))
}
