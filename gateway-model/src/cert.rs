//! The fields of an X.509 certificate as API Management shows them:
//! the SHA-1 thumbprint and the serial number in upper-case hex, subject
//! and issuer as `CN=..., O=..., C=...` (most specific first, as .NET
//! prints them). Parsed with x509-parser; used for client certificates
//! (per connection, by the gateway) and named certificates (catalog).

use sha1::{Digest, Sha1};
use x509_parser::{
    certificate::X509Certificate,
    extensions::GeneralName,
    objects::{oid_registry, oid2abbrev},
    prelude::FromDer,
    x509::X509Name,
};

/// What policies, key templates and conditions read of a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// SHA-1 of the DER, upper-case hex (APIM's `Thumbprint`).
    pub thumbprint: String,
    /// Upper-case hex, no separators (APIM's `SerialNumber`).
    pub serial_number: String,
    pub subject: String,
    pub issuer: String,
    /// The subject's first common name ("" without one).
    pub common_name: String,
    /// DNS names of the subject alternative name extension.
    pub dns_names: Vec<String>,
    /// Validity, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// The DER of the subject and issuer names, to find an issuer by
    /// its subject without comparing text.
    pub subject_der: Vec<u8>,
    pub issuer_der: Vec<u8>,
}

impl CertInfo {
    /// Parses one DER certificate; the error says what is wrong.
    pub fn parse(der: &[u8]) -> Result<CertInfo, String> {
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| format!("not an X.509 certificate ({e})"))?;
        if !rest.is_empty() {
            return Err("trailing bytes after the certificate".into());
        }
        let dns_names = match cert.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    _ => None,
                })
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => return Err(format!("bad subject alternative name ({e})")),
        };
        let validity = cert.validity();
        Ok(CertInfo {
            thumbprint: hex_upper(&Sha1::digest(der)),
            serial_number: hex_upper(cert.raw_serial()),
            subject: name(cert.subject()),
            issuer: name(cert.issuer()),
            common_name: cert
                .subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .unwrap_or_default()
                .to_string(),
            dns_names,
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            subject_der: cert.subject().as_raw().to_vec(),
            issuer_der: cert.issuer().as_raw().to_vec(),
        })
    }

    /// Whether `text` names this certificate's subject (or issuer, with
    /// `issuer`): case-insensitive, in .NET's order or the DER's.
    pub fn names_match(own: &str, text: &str) -> bool {
        let norm = |s: &str| {
            s.split(',')
                .map(|p| p.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        };
        let (a, b) = (norm(own), norm(text));
        a == b || a.iter().rev().eq(b.iter())
    }
}

/// `CN=client, O=Example, C=DE`: relative names most specific first.
fn name(n: &X509Name) -> String {
    let mut parts = Vec::new();
    for rdn in n.iter().collect::<Vec<_>>().into_iter().rev() {
        for attr in rdn.iter() {
            let key = oid2abbrev(attr.attr_type(), oid_registry())
                .map(str::to_string)
                .unwrap_or_else(|_| attr.attr_type().to_id_string());
            let value = attr.as_str().map(str::to_string).unwrap_or_else(|_| {
                // Not a string type: shown as `#` and hex, as RFC 4514 does.
                format!("#{}", hex_upper(attr.attr_value().data))
            });
            parts.push(format!("{key}={value}"));
        }
    }
    parts.join(", ")
}

/// Upper-case hex of `bytes`.
pub fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}

/// The DER certificates of a PEM text (every `CERTIFICATE` block).
pub fn pem_certificates(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let blocks = pem::parse_many(text).map_err(|e| format!("not PEM ({e})"))?;
    let certs: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .collect();
    if certs.is_empty() {
        return Err("no CERTIFICATE block".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_match_in_either_order_and_case() {
        assert!(CertInfo::names_match(
            "CN=client, O=Example, C=DE",
            "cn=client,o=example, c=de"
        ));
        assert!(CertInfo::names_match(
            "CN=client, O=Example, C=DE",
            "C=DE, O=Example, CN=client"
        ));
        assert!(!CertInfo::names_match("CN=client, O=Example", "CN=other"));
    }

    #[test]
    fn refuses_what_is_not_a_certificate() {
        assert!(CertInfo::parse(b"\x30\x03\x02\x01\x01").is_err());
        assert!(pem_certificates("hello").is_err());
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(pem_certificates(key).unwrap_err(), "no CERTIFICATE block");
    }
}
