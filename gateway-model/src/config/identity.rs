//! The `[identity]` section: the gateway's own OAuth 2.0 client, with
//! which `authentication-managed-identity` obtains tokens for backends
//! (client credentials grant). For Microsoft Entra ID that is an app
//! registration: `token_url` is
//! `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`, and
//! the credential a client secret or, as Entra Workload ID does, a
//! federated token file that the platform keeps fresh.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    /// The token endpoint (`https://`; `http://` only to loopback).
    token_url: String,
    /// The client (application) id.
    client_id: String,
    /// File holding the client secret; read at each token request, so
    /// a rotated secret needs no restart.
    #[serde(default)]
    client_secret_file: Option<PathBuf>,
    /// File holding a federated token (a JWT) sent as the client
    /// assertion instead of a secret; read at each token request.
    #[serde(default)]
    federated_token_file: Option<PathBuf>,
}

/// The credential the gateway proves itself with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    SecretFile(PathBuf),
    FederatedTokenFile(PathBuf),
}

/// Validated `[identity]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub token_url: String,
    pub client_id: String,
    pub credential: Credential,
}

impl IdentitySection {
    pub fn validate(&self) -> Result<Identity, String> {
        let url = self.token_url.trim();
        let loopback = |rest: &str| {
            let host = rest.split(['/', '?']).next().unwrap_or_default();
            let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
            host == "localhost"
                || host == "[::1]"
                || host
                    .parse::<std::net::Ipv4Addr>()
                    .is_ok_and(|ip| ip.is_loopback())
        };
        match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
            (Some(rest), _) if !rest.is_empty() => {}
            (_, Some(rest)) if loopback(rest) => {}
            _ => {
                return Err(format!(
                    "[identity] token_url \"{url}\" is not an https:// URL; give the token endpoint, e.g. https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token"
                ));
            }
        }
        if self.client_id.trim().is_empty() {
            return Err("[identity] client_id is empty; give the client (application) id".into());
        }
        let credential = match (&self.client_secret_file, &self.federated_token_file) {
            (Some(f), None) => Credential::SecretFile(f.clone()),
            (None, Some(f)) => Credential::FederatedTokenFile(f.clone()),
            _ => {
                return Err(
                    "[identity] needs exactly one of client_secret_file and federated_token_file"
                        .into(),
                );
            }
        };
        Ok(Identity {
            token_url: url.to_string(),
            client_id: self.client_id.trim().to_string(),
            credential,
        })
    }
}

impl Identity {
    /// Makes the credential file's path absolute, relative to the
    /// configuration file's folder.
    pub(super) fn resolve(&mut self, config: &Path) {
        match &mut self.credential {
            Credential::SecretFile(p) | Credential::FederatedTokenFile(p) => {
                *p = super::catalog::resolve(p, config)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Identity, String> {
        let s: IdentitySection = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        s.validate()
    }

    #[test]
    fn credentials_urls_and_refusals() {
        let i = parse(
            "token_url = 'https://login.example/t/oauth2/v2.0/token'\nclient_id = 'app'\nclient_secret_file = 's'",
        )
        .unwrap();
        assert_eq!(i.credential, Credential::SecretFile("s".into()));
        let i = parse(
            "token_url = 'http://127.0.0.1:9/token'\nclient_id = 'app'\nfederated_token_file = 'f'",
        )
        .unwrap();
        assert_eq!(i.credential, Credential::FederatedTokenFile("f".into()));
        for (bad, why) in [
            (
                "token_url = 'http://login.example/token'\nclient_id = 'a'\nclient_secret_file = 's'",
                "not an https:// URL",
            ),
            (
                "token_url = 'https://x/t'\nclient_id = ' '\nclient_secret_file = 's'",
                "client_id is empty",
            ),
            (
                "token_url = 'https://x/t'\nclient_id = 'a'",
                "exactly one of",
            ),
            (
                "token_url = 'https://x/t'\nclient_id = 'a'\nclient_secret_file = 's'\nfederated_token_file = 'f'",
                "exactly one of",
            ),
            (
                "token_url = 'https://x/t'\nclient_id = 'a'\nclient_secret = 's'",
                "unknown field",
            ),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
