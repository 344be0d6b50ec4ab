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
    /// Client certificates on connections to these names: "off" (default),
    /// "request" (asked for; an absent or untrusted one is left to the
    /// `validate-client-certificate` policy) or "require" (a certificate
    /// chaining to `client_ca_file`, not revoked, or no handshake).
    #[serde(default)]
    client_certificates: Option<String>,
    /// PEM bundle of the CAs client certificates must chain to.
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    /// CRL files (PEM or DER) of those CAs; a revoked client certificate
    /// is refused (`require`) or marked revoked for the policy (`request`).
    #[serde(default)]
    client_crl_files: Vec<PathBuf>,
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
    /// Whether and how clients present certificates to these names.
    pub client_auth: ClientAuth,
}

/// Client certificates asked of the clients of one listener certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    #[default]
    Off,
    /// Asked for; the handshake goes on without one or with one that does
    /// not verify, and policies see what was presented and whether it
    /// chained to `ca_file` (when set).
    Request {
        ca_file: Option<PathBuf>,
        crl_files: Vec<PathBuf>,
    },
    /// A certificate chaining to `ca_file` (and not revoked) or no
    /// handshake.
    Require {
        ca_file: PathBuf,
        crl_files: Vec<PathBuf>,
    },
}

impl ClientAuth {
    pub fn is_off(&self) -> bool {
        *self == ClientAuth::Off
    }
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
                .enumerate()
                .map(|(i, c)| {
                    Ok(Certificate {
                        cert: c.cert.clone(),
                        key: c.key.clone(),
                        server_names: c
                            .server_names
                            .iter()
                            .map(|n| n.to_ascii_lowercase())
                            .collect(),
                        client_auth: c
                            .client_auth()
                            .map_err(|m| format!("tls.certificates[{i}].{m}"))?,
                    })
                })
                .collect::<Result<_, String>>()?,
        })
    }
}

impl CertificateSection {
    fn client_auth(&self) -> Result<ClientAuth, String> {
        let crl_files = self.client_crl_files.clone();
        let ca_file = self.client_ca_file.clone();
        let auth = match self.client_certificates.as_deref() {
            None | Some("off") => {
                if ca_file.is_some() || !crl_files.is_empty() {
                    return Err(
                        "client_certificates: client_ca_file or client_crl_files given but client certificates are off; set client_certificates = \"request\" or \"require\", or remove them".into(),
                    );
                }
                ClientAuth::Off
            }
            Some("request") => ClientAuth::Request { ca_file, crl_files },
            Some("require") => match ca_file {
                Some(ca_file) => ClientAuth::Require { ca_file, crl_files },
                None => {
                    return Err(
                        "client_certificates: \"require\" needs client_ca_file, the PEM bundle of the CAs client certificates must chain to".into(),
                    );
                }
            },
            Some(other) => {
                return Err(format!(
                    "client_certificates: \"{other}\" is unknown; use \"off\", \"request\" or \"require\""
                ));
            }
        };
        if let ClientAuth::Request {
            ca_file: None,
            crl_files,
        } = &auth
            && !crl_files.is_empty()
        {
            return Err(
                "client_crl_files: CRLs need client_ca_file (the CAs that signed them)".into(),
            );
        }
        Ok(auth)
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

#[cfg(test)]
mod tests {
    use super::ClientAuth;
    use crate::config::Config;

    fn parse(extra: &str) -> Result<ClientAuth, String> {
        let text = format!(
            "[gateway]\nlisten = \"127.0.0.1:8080\"\n[tls]\nlisten = \"127.0.0.1:8443\"\n[[tls.certificates]]\ncert = \"c.pem\"\nkey = \"k.pem\"\n{extra}"
        );
        Config::parse("t.toml", &text)
            .map(|c| c.tls.unwrap().certificates[0].client_auth.clone())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn client_certificate_settings() {
        assert_eq!(parse(""), Ok(ClientAuth::Off));
        assert_eq!(
            parse("client_certificates = \"request\""),
            Ok(ClientAuth::Request {
                ca_file: None,
                crl_files: vec![]
            })
        );
        assert_eq!(
            parse(
                "client_certificates = \"require\"\nclient_ca_file = \"ca.pem\"\nclient_crl_files = [\"a.crl\"]"
            ),
            Ok(ClientAuth::Require {
                ca_file: "ca.pem".into(),
                crl_files: vec!["a.crl".into()]
            })
        );
        for (extra, want) in [
            (
                "client_certificates = \"require\"",
                "tls.certificates[0].client_certificates: \"require\" needs client_ca_file",
            ),
            ("client_certificates = \"yes\"", "\"yes\" is unknown"),
            ("client_ca_file = \"ca.pem\"", "client certificates are off"),
            (
                "client_certificates = \"request\"\nclient_crl_files = [\"a.crl\"]",
                "client_crl_files: CRLs need client_ca_file",
            ),
        ] {
            let err = parse(extra).unwrap_err();
            assert!(err.contains(want), "{extra}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
