//! `validate-client-certificate`: the certificate the client presented on
//! the TLS connection (`[[tls.certificates]] client_certificates`) must be
//! valid and match one of the identities, as in API Management:
//!
//! ```yaml
//! - validate-client-certificate:
//!     validate-revocation: true     # against the listener's client_crl_files
//!     validate-trust: true          # chains to the listener's client_ca_file or a `ca: true` catalog certificate
//!     validate-not-before: true
//!     validate-not-after: true
//!     ignore-error: false           # true: log and let the request through
//!     identities:                   # any one matches; every attribute of it must
//!       - thumbprint: 9F2C...       # SHA-1, hex
//!       - issuer-certificate-id: partner-ca   # a catalog certificate
//!         common-name: device-42
//! ```
//!
//! Identity attributes: `thumbprint`, `serial-number`, `common-name`,
//! `subject`, `dns-name`, `issuer-subject`, `issuer-thumbprint`,
//! `issuer-certificate-id`, and `certificate-id` (the certificate is that
//! named catalog certificate). The ids are checked against the catalog's
//! `certificates` when the catalog is validated. A refusal is 403.

use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Refuse a certificate the listener's CRLs list (default true).
    #[serde(
        default = "yes",
        rename = "validate-revocation",
        alias = "validate_revocation"
    )]
    validate_revocation: bool,
    /// Refuse a certificate that does not chain to a trusted CA (default true).
    #[serde(default = "yes", rename = "validate-trust", alias = "validate_trust")]
    validate_trust: bool,
    /// Refuse a certificate not valid yet (default true).
    #[serde(
        default = "yes",
        rename = "validate-not-before",
        alias = "validate_not_before"
    )]
    validate_not_before: bool,
    /// Refuse an expired certificate (default true).
    #[serde(
        default = "yes",
        rename = "validate-not-after",
        alias = "validate_not_after"
    )]
    validate_not_after: bool,
    /// Let the request through when validation fails (default false).
    #[serde(default, rename = "ignore-error", alias = "ignore_error")]
    ignore_error: bool,
    /// Accepted certificates; empty: any that passes the checks above.
    #[serde(default)]
    identities: Vec<IdentityFile>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct IdentityFile {
    #[serde(default)]
    thumbprint: Option<String>,
    #[serde(default, alias = "serial_number")]
    serial_number: Option<String>,
    #[serde(default, alias = "common_name")]
    common_name: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default, alias = "dns_name")]
    dns_name: Option<String>,
    #[serde(default, alias = "issuer_subject")]
    issuer_subject: Option<String>,
    #[serde(default, alias = "issuer_thumbprint")]
    issuer_thumbprint: Option<String>,
    #[serde(default, alias = "issuer_certificate_id")]
    issuer_certificate_id: Option<String>,
    #[serde(default, alias = "certificate_id")]
    certificate_id: Option<String>,
}

/// One accepted certificate: every attribute given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// Upper-case hex, separators removed.
    pub thumbprint: Option<String>,
    /// Upper-case hex, separators and leading zeros removed.
    pub serial_number: Option<String>,
    pub common_name: Option<String>,
    pub subject: Option<String>,
    pub dns_name: Option<String>,
    pub issuer_subject: Option<String>,
    pub issuer_thumbprint: Option<String>,
    /// Catalog certificate ids.
    pub issuer_certificate_id: Option<String>,
    pub certificate_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidateClientCertificateSpec {
    pub validate_revocation: bool,
    pub validate_trust: bool,
    pub validate_not_before: bool,
    pub validate_not_after: bool,
    pub ignore_error: bool,
    pub identities: Vec<Identity>,
}

impl ValidateClientCertificateSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let identities = f
            .identities
            .into_iter()
            .enumerate()
            .map(|(i, id)| identity(id).map_err(|m| format!("identities[{i}]: {m}")))
            .collect::<Result<_, _>>()?;
        Ok(ValidateClientCertificateSpec {
            validate_revocation: f.validate_revocation,
            validate_trust: f.validate_trust,
            validate_not_before: f.validate_not_before,
            validate_not_after: f.validate_not_after,
            ignore_error: f.ignore_error,
            identities,
        })
    }

    /// The catalog certificate ids its identities name.
    pub fn certificate_ids(&self) -> impl Iterator<Item = &str> {
        self.identities.iter().flat_map(|i| {
            [&i.issuer_certificate_id, &i.certificate_id]
                .into_iter()
                .flatten()
                .map(String::as_str)
        })
    }
}

fn identity(f: IdentityFile) -> Result<Identity, String> {
    let hex = |field: &str, v: Option<String>, trim_zeros: bool| -> Result<_, String> {
        let Some(v) = v else { return Ok(None) };
        let cleaned: String = v
            .chars()
            .filter(|c| !matches!(c, ':' | ' ' | '-'))
            .collect::<String>()
            .to_ascii_uppercase();
        if cleaned.is_empty() || !cleaned.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "{field}: \"{v}\" is not hexadecimal; copy it as the certificate shows it (e.g. 9F2C... )"
            ));
        }
        Ok(Some(if trim_zeros {
            let t = cleaned.trim_start_matches('0');
            if t.is_empty() { "0".into() } else { t.into() }
        } else {
            cleaned
        }))
    };
    let id = Identity {
        thumbprint: hex("thumbprint", f.thumbprint, false)?,
        serial_number: hex("serial-number", f.serial_number, true)?,
        common_name: f.common_name,
        subject: f.subject,
        dns_name: f.dns_name,
        issuer_subject: f.issuer_subject,
        issuer_thumbprint: hex("issuer-thumbprint", f.issuer_thumbprint, false)?,
        issuer_certificate_id: f.issuer_certificate_id,
        certificate_id: f.certificate_id,
    };
    if id == Identity::default() {
        return Err("an identity needs at least one attribute: thumbprint, serial-number, common-name, subject, dns-name, issuer-subject, issuer-thumbprint, issuer-certificate-id or certificate-id".into());
    }
    for t in [&id.thumbprint, &id.issuer_thumbprint]
        .into_iter()
        .flatten()
    {
        if t.len() != 40 {
            return Err(format!(
                "thumbprint \"{t}\" has {} hex digits; a SHA-1 thumbprint has 40",
                t.len()
            ));
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ValidateClientCertificateSpec, String> {
        ValidateClientCertificateSpec::parse(serde_yaml::from_str(text).unwrap())
    }

    #[test]
    fn defaults_and_identities() {
        let s = parse("{}").unwrap();
        assert!(s.validate_trust && s.validate_revocation && s.validate_not_after);
        assert!(s.validate_not_before && !s.ignore_error && s.identities.is_empty());
        let s = parse(
            "{validate-trust: false, identities: [{thumbprint: 'aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd', serial-number: '00:0a'}, {issuer-certificate-id: ca1, common-name: dev}]}",
        )
        .unwrap();
        assert!(!s.validate_trust);
        assert_eq!(
            s.identities[0].thumbprint.as_deref(),
            Some("AABBCCDDEEFF00112233445566778899AABBCCDD")
        );
        assert_eq!(s.identities[0].serial_number.as_deref(), Some("A"));
        assert_eq!(s.certificate_ids().collect::<Vec<_>>(), ["ca1"]);
    }

    #[test]
    fn refuses_bad_settings() {
        for (text, want) in [
            ("{identities: [{}]}", "at least one attribute"),
            ("{identities: [{thumbprint: xyz}]}", "not hexadecimal"),
            ("{identities: [{thumbprint: abcd}]}", "has 4 hex digits"),
            ("{validate-trus: true}", "validate-trus"),
            ("{identities: [{issuer: x}]}", "issuer"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
