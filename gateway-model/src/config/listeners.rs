//! The `[tls]` (HTTPS listener) and `[admin]` (health and metrics) sections.

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

use super::parse_addr;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsSection {
    /// Address of the HTTPS listener, e.g. "0.0.0.0:8443".
    listen: String,
    /// Certificates; the one whose `server_names` contains the SNI name is
    /// used, else the first one.
    certificates: Vec<CertificateSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateSection {
    /// PEM certificate chain, leaf first.
    cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    key: PathBuf,
    /// SNI names this certificate answers for.
    #[serde(default)]
    server_names: Vec<String>,
}

/// The HTTPS listener.
#[derive(Clone, Debug)]
pub struct TlsListener {
    pub listen: SocketAddr,
    pub certificates: Vec<Certificate>,
}

/// One certificate and the SNI names it serves.
#[derive(Clone, Debug)]
pub struct Certificate {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub server_names: Vec<String>,
}

impl TlsSection {
    pub(super) fn validate(&self) -> Result<TlsListener, String> {
        let listen = parse_addr(&self.listen).map_err(|m| format!("tls.listen: {m}"))?;
        if self.certificates.is_empty() {
            return Err(
                "tls.certificates: add at least one [[tls.certificates]] with cert and key".into(),
            );
        }
        Ok(TlsListener {
            listen,
            certificates: self
                .certificates
                .iter()
                .map(|c| Certificate {
                    cert: c.cert.clone(),
                    key: c.key.clone(),
                    server_names: c
                        .server_names
                        .iter()
                        .map(|n| n.to_ascii_lowercase())
                        .collect(),
                })
                .collect(),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdminSection {
    /// Address of the admin listener (/healthz, /readyz, /metrics); keep it
    /// on loopback or a management network.
    #[serde(default = "default_admin_listen")]
    listen: String,
}

fn default_admin_listen() -> String {
    "127.0.0.1:9901".into()
}

impl AdminSection {
    pub(super) fn validate(&self) -> Result<SocketAddr, String> {
        parse_addr(&self.listen).map_err(|m| format!("admin.listen: {m}"))
    }
}
