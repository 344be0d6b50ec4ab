//! `validate-jwt`: the request must carry a JWT (Authorization: Bearer, or
//! another header, or a query parameter) signed by a configured key
//! (HS256, RS256, ES256), from one of the issuers, for one of the
//! audiences, with the required claims, unexpired (with clock skew).
//! Keys are inline, or fetched from a JWKS URL or an OpenID configuration
//! and cached (`jwks`); claims are checked in `claims`.

mod claims;
pub(crate) mod jwks;
mod keys;

use std::{sync::Arc, time::Duration};

use serde::Deserialize;
use serde_json::{Map, Value as Json};
use serde_yaml::Value;

use self::{
    claims::Constraints,
    jwks::{Jwks, Source},
    keys::{ALGORITHMS, Key},
};
use super::{context::Ctx, respond};
use crate::proxy::ProxyBody;

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

pub struct ValidateJwt {
    header: String,
    query: Option<String>,
    status: hyper::StatusCode,
    message: String,
    constraints: Constraints,
    inline: Vec<Key>,
    remote: Option<Remote>,
}

struct Remote {
    jwks: Arc<Jwks>,
    /// Age after which fetched keys are refreshed.
    refresh: Duration,
}

impl std::fmt::Debug for ValidateJwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValidateJwt({} inline keys)", self.inline.len())
    }
}

impl ValidateJwt {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = serde_yaml::from_value(args).map_err(|e| e.to_string())?;
        let inline = f
            .signing_keys
            .into_iter()
            .map(|k| Key::inline(&k.alg, k.secret.as_deref(), k.pem.as_deref(), k.kid))
            .collect::<Result<Vec<_>, _>>()?;
        let remote = match (&f.jwks_url, &f.openid_config_url) {
            (Some(_), Some(_)) => return Err("give jwks_url or openid_config_url, not both".into()),
            (Some(u), None) | (None, Some(u)) => {
                if !u.starts_with("http://") && !u.starts_with("https://") {
                    return Err(format!("\"{u}\" is not an http:// or https:// URL"));
                }
                Some(Remote {
                    jwks: Jwks::shared(Source {
                        url: u.clone(),
                        openid: f.openid_config_url.is_some(),
                    }),
                    refresh: Duration::from_secs(f.keys_refresh.max(1)),
                })
            }
            (None, None) => None,
        };
        if inline.is_empty() && remote.is_none() {
            return Err("no keys: give signing_keys, jwks_url or openid_config_url".into());
        }
        Ok(ValidateJwt {
            header: f.header_name.unwrap_or_else(|| "authorization".into()),
            query: f.query_parameter_name,
            status: respond::status(f.failed_validation_httpcode.unwrap_or(401))?,
            message: f
                .failed_validation_error_message
                .unwrap_or_else(|| "Invalid JWT.".into()),
            constraints: Constraints {
                issuers: f.issuers,
                audiences: f.audiences,
                required: f
                    .required_claims
                    .into_iter()
                    .map(|c| (c.name, c.values))
                    .collect(),
                require_exp: f.require_expiration_time,
                skew: f.clock_skew,
            },
            inline,
            remote,
        })
    }

    pub async fn check(&self, ctx: &mut Ctx<'_>) -> Option<hyper::Response<ProxyBody>> {
        match self.validate(ctx).await {
            Ok(claims) => {
                ctx.jwt_claims = Some(claims);
                None
            }
            Err(reason) => {
                tracing::debug!(%reason, api = ctx.api, "JWT rejected");
                Some(respond::json_error(self.status, &self.message))
            }
        }
    }

    async fn validate(&self, ctx: &Ctx<'_>) -> Result<Map<String, Json>, String> {
        let token = match &self.query {
            Some(q) => ctx.query.get(q),
            None => ctx
                .headers
                .get(self.header.as_str())
                .and_then(|v| v.to_str().ok())
                .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_string()),
        }
        .filter(|t| !t.is_empty())
        .ok_or("no token")?;
        let header = jsonwebtoken::decode_header(&token).map_err(|e| e.to_string())?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(format!("algorithm {:?} not accepted", header.alg));
        }
        let claims = match keys::verify(&self.inline, &token, &header) {
            Some(c) => c,
            None => self.verify_remote(&token, &header).await?,
        };
        self.constraints
            .check(&claims, jsonwebtoken::get_current_timestamp())?;
        Ok(claims)
    }

    /// Verifies with the fetched keys; when none verifies (an unknown key
    /// id), with newer keys if a refresh is allowed.
    async fn verify_remote(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
    ) -> Result<Map<String, Json>, String> {
        let no_key = || "signature not valid for any key".to_string();
        let remote = self.remote.as_ref().ok_or_else(no_key)?;
        let keys = remote.jwks.current(remote.refresh).await?;
        if let Some(claims) = keys::verify(&keys.keys, token, header) {
            return Ok(claims);
        }
        let newer = remote.jwks.newer(&keys).await.ok_or_else(no_key)?;
        keys::verify(&newer.keys, token, header).ok_or_else(no_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn token(claims: serde_json::Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"k1"),
        )
        .unwrap()
    }

    async fn run(policy: &str, bearer: Option<&str>) -> Option<u16> {
        let p = ValidateJwt::parse(serde_yaml::from_str(policy).unwrap()).unwrap();
        let mut headers = hyper::HeaderMap::new();
        if let Some(t) = bearer {
            headers.insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let method = hyper::Method::GET;
        let mut ctx = Ctx::test(&method, &mut headers);
        p.check(&mut ctx).await.map(|r| r.status().as_u16())
    }

    const POLICY: &str = "{signing_keys: [{alg: HS256, secret: k1}], issuers: [iss1], audiences: [api1], required_claims: [{name: scope, values: [read]}], clock_skew: 5}";

    #[tokio::test]
    async fn hs256_issuer_audience_claims_and_expiry() {
        let good = serde_json::json!({"iss": "iss1", "aud": "api1", "scope": "read write", "exp": now() + 60});
        assert_eq!(run(POLICY, Some(&token(good.clone()))).await, None);
        assert_eq!(run(POLICY, None).await, Some(401));
        for (field, value) in [
            ("iss", serde_json::json!("other")),
            ("aud", serde_json::json!("other")),
            ("scope", serde_json::json!("write")),
            ("exp", serde_json::json!(now() - 30)),
        ] {
            let mut c = good.clone();
            c[field] = value;
            assert_eq!(run(POLICY, Some(&token(c))).await, Some(401), "{field}");
        }
        // A configured constraint requires its claim (claims.rs has the
        // whole table).
        for field in ["iss", "aud", "scope", "exp"] {
            let mut c = good.clone();
            c.as_object_mut().unwrap().remove(field);
            assert_eq!(run(POLICY, Some(&token(c))).await, Some(401), "no {field}");
        }
        // Within the clock skew.
        let mut c = good.clone();
        c["exp"] = serde_json::json!(now() - 2);
        assert_eq!(run(POLICY, Some(&token(c))).await, None);
        // Wrong secret.
        let forged = encode(
            &Header::new(Algorithm::HS256),
            &good,
            &EncodingKey::from_secret(b"k2"),
        )
        .unwrap();
        assert_eq!(run(POLICY, Some(&forged)).await, Some(401));
    }

    /// A token that verifies but fails a claim check is refused without
    /// a JWKS fetch (it is not an unknown key).
    #[tokio::test]
    async fn expired_token_with_inline_key_starts_no_fetch() {
        let policy =
            "{signing_keys: [{alg: HS256, secret: k1}], jwks_url: 'http://127.0.0.1:9/no-fetch'}";
        let p = ValidateJwt::parse(serde_yaml::from_str(policy).unwrap()).unwrap();
        let mut headers = hyper::HeaderMap::new();
        let expired = token(serde_json::json!({"exp": now() - 60}));
        headers.insert(
            "authorization",
            format!("Bearer {expired}").parse().unwrap(),
        );
        let method = hyper::Method::GET;
        let mut ctx = Ctx::test(&method, &mut headers);
        assert_eq!(
            p.check(&mut ctx).await.map(|r| r.status().as_u16()),
            Some(401)
        );
        assert!(!p.remote.as_ref().unwrap().jwks.fetch_started());
    }

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
                ValidateJwt::parse(serde_yaml::from_str(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }
}
