//! `authentication-certificate`: the backend request presents a client
//! certificate of the catalog (`certificates:` with a `key_file`), chosen
//! by id or thumbprint, as in API Management:
//!
//! ```yaml
//! - authentication-certificate: { certificate-id: partner-client }
//! - authentication-certificate: { thumbprint: 9F2C... }
//! ```
//!
//! It applies to whichever backend the request goes to (the API's, or the
//! one `set-backend-service` chose). A backend can also carry its own
//! certificate (`[[backends]] client_cert` / `client_key`); the policy's
//! wins. The reference is checked when the catalog is validated.

use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    #[serde(default, alias = "certificate_id")]
    certificate_id: Option<String>,
    #[serde(default)]
    thumbprint: Option<String>,
}

/// Which catalog certificate is presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthenticationCertificateSpec {
    Id(String),
    /// Upper-case hex, separators removed.
    Thumbprint(String),
}

impl AuthenticationCertificateSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        match (f.certificate_id, f.thumbprint) {
            (Some(id), None) if !id.is_empty() => Ok(Self::Id(id)),
            (None, Some(t)) => {
                let hex: String = t
                    .chars()
                    .filter(|c| !matches!(c, ':' | ' '))
                    .collect::<String>()
                    .to_ascii_uppercase();
                if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!(
                        "thumbprint \"{t}\" is not a SHA-1 thumbprint (40 hex digits)"
                    ));
                }
                Ok(Self::Thumbprint(hex))
            }
            _ => Err(
                "give exactly one of certificate-id (a catalog certificate's id) or thumbprint"
                    .into(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reference() {
        let parse =
            |t: &str| AuthenticationCertificateSpec::parse(serde_yaml::from_str(t).unwrap());
        assert_eq!(
            parse("{certificate-id: c1}"),
            Ok(AuthenticationCertificateSpec::Id("c1".into()))
        );
        assert!(
            parse("{thumbprint: ab}")
                .unwrap_err()
                .contains("40 hex digits")
        );
        assert!(parse("{}").unwrap_err().contains("exactly one"));
        assert!(parse("{certificate-id: a, thumbprint: b}").is_err());
    }
}
