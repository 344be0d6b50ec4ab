//! `validate-jwt`: where the token is, which keys sign it (inline, or a
//! JWKS / OpenID configuration URL) and what its claims must say. The
//! gateway's `policy/jwt` verifies tokens.

use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use serde_yaml::Value;

use self::pem_key::PemKind;

mod pem_key;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Header carrying the token (default Authorization, "Bearer " prefix).
    #[serde(default)]
    header_name: Option<String>,
    /// Query parameter carrying the token, instead of a header.
    #[serde(default)]
    query_parameter_name: Option<String>,
    /// Status when validation fails (default 401).
    #[serde(default)]
    failed_validation_httpcode: Option<u16>,
    /// Message when validation fails.
    #[serde(default)]
    failed_validation_error_message: Option<String>,
    /// A variable that receives the validated token (a `Jwt` for policy
    /// expressions: `(Jwt)context.Variables["name"]`).
    #[serde(default)]
    output_token_variable_name: Option<String>,
    /// Whether `exp` is required (default true).
    #[serde(default = "yes")]
    require_expiration_time: bool,
    /// Seconds of tolerance on `exp` and `nbf` (default 0).
    #[serde(default)]
    clock_skew: u64,
    /// Accepted `iss` values (any when empty).
    #[serde(default)]
    issuers: Vec<String>,
    /// Accepted `aud` values (any when empty).
    #[serde(default)]
    audiences: Vec<String>,
    /// Claims that must be present, optionally with one of the values.
    #[serde(default)]
    required_claims: Vec<ClaimFile>,
    /// Accepted client applications (Microsoft Entra ID): the token's
    /// `azp` (v2 tokens) or `appid` (v1) must be one of them.
    #[serde(default)]
    client_application_ids: Vec<String>,
    /// Inline keys.
    #[serde(default)]
    signing_keys: Vec<KeyFile>,
    /// JWKS document URL.
    #[serde(default)]
    jwks_url: Option<String>,
    /// OpenID configuration URL (its `jwks_uri` is used).
    #[serde(default)]
    openid_config_url: Option<String>,
    /// Seconds fetched keys are cached (default 3600).
    #[serde(default = "hour")]
    keys_refresh: u64,
}

fn yes() -> bool {
    true
}

fn hour() -> u64 {
    3600
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimFile {
    name: String,
    #[serde(default)]
    values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    /// HS256, RS256 or ES256.
    alg: String,
    /// HS256: the shared secret.
    #[serde(default)]
    secret: Option<String>,
    /// RS256 / ES256: the public key, PEM.
    #[serde(default)]
    pem: Option<String>,
    /// Optional key id, matched against the token's `kid`.
    #[serde(default)]
    kid: Option<String>,
}

/// An inline key: its material is checked here, decoded by the gateway.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    Hs256 { secret: String },
    Rs256 { pem: String },
    Es256 { pem: String },
}

#[derive(Clone, PartialEq, Eq)]
pub struct InlineKey {
    pub material: KeyMaterial,
    pub kid: Option<String>,
}

/// Where fetched keys come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteKeys {
    pub url: String,
    /// The URL is an OpenID configuration (its `jwks_uri` is fetched).
    pub openid: bool,
    /// Age after which fetched keys are refreshed.
    pub refresh: Duration,
}

/// What the token's claims must say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimRules {
    /// Accepted `iss` values; when not empty, `iss` is required.
    pub issuers: Vec<String>,
    /// Accepted `aud` values; when not empty, `aud` is required.
    pub audiences: Vec<String>,
    /// Claims that must be present, with one of the values when given.
    pub required: Vec<(String, Vec<String>)>,
    /// Accepted client applications: `azp` or `appid` must be one.
    pub client_applications: Vec<String>,
    pub require_exp: bool,
    /// Seconds of tolerance on `exp` and `nbf`.
    pub skew: u64,
}

#[derive(Clone, PartialEq, Eq)]
pub struct ValidateJwtSpec {
    /// Header carrying the token (lower case).
    pub header: String,
    /// Query parameter carrying the token, instead of the header.
    pub query: Option<String>,
    pub status: StatusCode,
    pub message: String,
    pub claims: ClaimRules,
    pub inline: Vec<InlineKey>,
    pub remote: Option<RemoteKeys>,
    /// The variable the validated token is stored in.
    pub output_variable: Option<String>,
}

// Secrets of inline keys are never shown.
impl std::fmt::Debug for ValidateJwtSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValidateJwt({} inline keys)", self.inline.len())
    }
}

impl ValidateJwtSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let inline = f
            .signing_keys
            .into_iter()
            .map(|k| inline_key(&k.alg, k.secret, k.pem, k.kid))
            .collect::<Result<Vec<_>, _>>()?;
        let remote = match (&f.jwks_url, &f.openid_config_url) {
            (Some(_), Some(_)) => return Err("give jwks_url or openid_config_url, not both".into()),
            (Some(u), None) | (None, Some(u)) => {
                if !u.starts_with("http://") && !u.starts_with("https://") {
                    return Err(format!("\"{u}\" is not an http:// or https:// URL"));
                }
                Some(RemoteKeys {
                    url: u.clone(),
                    openid: f.openid_config_url.is_some(),
                    refresh: Duration::from_secs(f.keys_refresh.max(1)),
                })
            }
            (None, None) => None,
        };
        if inline.is_empty() && remote.is_none() {
            return Err("no keys: give signing_keys, jwks_url or openid_config_url".into());
        }
        if f.output_token_variable_name
            .as_deref()
            .is_some_and(|n| n.trim().is_empty())
        {
            return Err("output_token_variable_name is empty; give the variable's name".into());
        }
        Ok(ValidateJwtSpec {
            header: f.header_name.unwrap_or_else(|| "authorization".into()),
            query: f.query_parameter_name,
            status: super::status(f.failed_validation_httpcode.unwrap_or(401))?,
            message: f
                .failed_validation_error_message
                .unwrap_or_else(|| "Invalid JWT.".into()),
            claims: ClaimRules {
                issuers: f.issuers,
                audiences: f.audiences,
                required: f
                    .required_claims
                    .into_iter()
                    .map(|c| (c.name, c.values))
                    .collect(),
                client_applications: f.client_application_ids,
                require_exp: f.require_expiration_time,
                skew: f.clock_skew,
            },
            inline,
            remote,
            output_variable: f.output_token_variable_name,
        })
    }
}

/// An inline key from the policy's settings.
fn inline_key(
    alg: &str,
    secret: Option<String>,
    pem: Option<String>,
    kid: Option<String>,
) -> Result<InlineKey, String> {
    let material = match (alg, secret, pem) {
        ("HS256", Some(secret), None) => KeyMaterial::Hs256 { secret },
        ("RS256", None, Some(pem)) => {
            pem_key::check(&pem, PemKind::Rsa).map_err(|e| format!("RS256 pem: {e}"))?;
            KeyMaterial::Rs256 { pem }
        }
        ("ES256", None, Some(pem)) => {
            pem_key::check(&pem, PemKind::Ec).map_err(|e| format!("ES256 pem: {e}"))?;
            KeyMaterial::Es256 { pem }
        }
        (alg @ ("HS256" | "RS256" | "ES256"), _, _) => {
            return Err(format!(
                "signing key {alg}: give `secret` for HS256, `pem` for RS256 and ES256"
            ));
        }
        (other, _, _) => {
            return Err(format!(
                "signing key alg \"{other}\" is not supported; use HS256, RS256 or ES256"
            ));
        }
    };
    Ok(InlineKey { material, kid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_settings() {
        for bad in [
            "{}",
            "{signing_keys: [{alg: HS512, secret: x}]}",
            "{signing_keys: [{alg: RS256, secret: x}]}",
            "{signing_keys: [{alg: ES256, pem: nope}]}",
            "{jwks_url: ftp://x}",
            "{jwks_url: 'http://a', openid_config_url: 'http://b'}",
        ] {
            assert!(
                ValidateJwtSpec::parse(serde_yaml::from_str(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }
}
