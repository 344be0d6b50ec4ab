//! `authentication-basic`: the backend request carries
//! `Authorization: Basic base64(username:password)` (inbound). Named
//! values (`{{name}}`, secrets too) are substituted before this runs; the
//! header is made once here and never shown.

use base64::Engine;
use http::HeaderValue;
use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The user name (no `:`).
    username: String,
    /// The password.
    password: String,
}

#[derive(Clone, PartialEq)]
pub struct AuthenticationBasicSpec {
    /// `Basic ...`, marked sensitive.
    pub header: HeaderValue,
}

impl std::fmt::Debug for AuthenticationBasicSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthenticationBasic(..)")
    }
}

impl AuthenticationBasicSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        if f.username.is_empty() {
            return Err("username is empty; give the backend's user name".into());
        }
        if f.username.contains(':') {
            return Err(
                "username contains \":\", which Basic authentication cannot carry; remove it"
                    .into(),
            );
        }
        let pair = format!("{}:{}", f.username, f.password);
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        let mut header = HeaderValue::from_str(&format!("Basic {encoded}"))
            .map_err(|_| "username or password is not valid in a header".to_string())?;
        header.set_sensitive(true);
        Ok(AuthenticationBasicSpec { header })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<AuthenticationBasicSpec, String> {
        AuthenticationBasicSpec::parse(serde_yaml::from_str(s).unwrap())
    }

    #[test]
    fn makes_the_header_and_refuses_bad_settings() {
        // RFC 7617's example.
        let spec = parse("{username: Aladdin, password: open sesame}").unwrap();
        assert_eq!(spec.header, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(spec.header.is_sensitive());
        assert!(!format!("{spec:?}").contains("QWxh"));
        assert!(parse("{username: a}").unwrap_err().contains("password"));
        assert!(
            parse("{username: '', password: p}")
                .unwrap_err()
                .contains("username is empty")
        );
        assert!(
            parse("{username: 'a:b', password: p}")
                .unwrap_err()
                .contains("\":\"")
        );
        assert!(
            parse("{username: a, password: p, realm: x}")
                .unwrap_err()
                .contains("unknown field")
        );
    }
}
