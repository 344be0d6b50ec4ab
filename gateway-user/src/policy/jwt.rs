//! `validate-jwt`: the request must carry a JWT (Authorization: Bearer, or
//! another header, or a query parameter) signed by a configured key
//! (HS256, RS256, ES256), from one of the issuers, for one of the
//! audiences, with the required claims, unexpired (with clock skew).
//! Keys are inline, or fetched from a JWKS URL or an OpenID configuration
//! and cached; an unknown `kid` triggers a refresh (at most every 30 s).

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    jwk::{AlgorithmParameters, JwkSet},
};
use serde::Deserialize;
use serde_yaml::Value;

use super::{context::Ctx, fetch, respond};
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

struct Key {
    alg: Algorithm,
    kid: Option<String>,
    key: DecodingKey,
}

struct Fetched {
    at: Instant,
    keys: Vec<Key>,
}

pub struct ValidateJwt {
    header: String,
    query: Option<String>,
    status: hyper::StatusCode,
    message: String,
    validation: Validation,
    claims: Vec<(String, Vec<String>)>,
    inline: Vec<Key>,
    remote: Option<Remote>,
}

struct Remote {
    url: String,
    openid: bool,
    refresh: Duration,
    cache: Mutex<Option<Fetched>>,
}

impl std::fmt::Debug for ValidateJwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ValidateJwt({} inline keys)", self.inline.len())
    }
}

const ALGORITHMS: [Algorithm; 3] = [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256];

impl ValidateJwt {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = serde_yaml::from_value(args).map_err(|e| e.to_string())?;
        let mut inline = Vec::new();
        for k in &f.signing_keys {
            let (alg, key) = match (k.alg.as_str(), &k.secret, &k.pem) {
                ("HS256", Some(s), None) => {
                    (Algorithm::HS256, DecodingKey::from_secret(s.as_bytes()))
                }
                ("RS256", None, Some(p)) => (
                    Algorithm::RS256,
                    DecodingKey::from_rsa_pem(p.as_bytes())
                        .map_err(|e| format!("RS256 pem: {e}"))?,
                ),
                ("ES256", None, Some(p)) => (
                    Algorithm::ES256,
                    DecodingKey::from_ec_pem(p.as_bytes())
                        .map_err(|e| format!("ES256 pem: {e}"))?,
                ),
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
            inline.push(Key {
                alg,
                kid: k.kid.clone(),
                key,
            });
        }
        let remote = match (&f.jwks_url, &f.openid_config_url) {
            (Some(_), Some(_)) => return Err("give jwks_url or openid_config_url, not both".into()),
            (Some(u), None) | (None, Some(u)) => {
                if !u.starts_with("http://") && !u.starts_with("https://") {
                    return Err(format!("\"{u}\" is not an http:// or https:// URL"));
                }
                Some(Remote {
                    url: u.clone(),
                    openid: f.openid_config_url.is_some(),
                    refresh: Duration::from_secs(f.keys_refresh.max(1)),
                    cache: Mutex::new(None),
                })
            }
            (None, None) => None,
        };
        if inline.is_empty() && remote.is_none() {
            return Err("no keys: give signing_keys, jwks_url or openid_config_url".into());
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = ALGORITHMS.to_vec();
        validation.leeway = f.clock_skew;
        validation.validate_nbf = true;
        validation.required_spec_claims.clear();
        if f.require_expiration_time {
            validation.required_spec_claims.insert("exp".into());
        } else {
            validation.validate_exp = false;
        }
        if !f.issuers.is_empty() {
            validation.set_issuer(&f.issuers);
        }
        if f.audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&f.audiences);
        }
        Ok(ValidateJwt {
            header: f.header_name.unwrap_or_else(|| "authorization".into()),
            query: f.query_parameter_name,
            status: respond::status(f.failed_validation_httpcode.unwrap_or(401))?,
            message: f
                .failed_validation_error_message
                .unwrap_or_else(|| "Invalid JWT.".into()),
            validation,
            claims: f
                .required_claims
                .into_iter()
                .map(|c| (c.name, c.values))
                .collect(),
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

    async fn validate(
        &self,
        ctx: &Ctx<'_>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
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
        let claims = match self.try_keys(&self.inline, &token, &header) {
            Some(c) => c,
            None => self.try_remote(&token, &header).await?,
        };
        for (name, values) in &self.claims {
            let claim = claims
                .get(name)
                .ok_or_else(|| format!("claim {name} missing"))?;
            let present = |want: &String| match claim {
                serde_json::Value::String(s) => s == want || s.split(' ').any(|p| p == want),
                serde_json::Value::Array(items) => items.iter().any(|i| i.as_str() == Some(want)),
                other => want.parse::<serde_json::Value>().is_ok_and(|w| w == *other),
            };
            if !values.is_empty() && !values.iter().any(present) {
                return Err(format!("claim {name} has none of the required values"));
            }
        }
        Ok(claims)
    }

    fn try_keys(
        &self,
        keys: &[Key],
        token: &str,
        header: &jsonwebtoken::Header,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        keys.iter()
            .filter(|k| k.alg == header.alg)
            .filter(|k| match (&k.kid, &header.kid) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            })
            .find_map(|k| {
                // The library wants only algorithms of the key's family.
                let mut validation = self.validation.clone();
                validation.algorithms = vec![k.alg];
                jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                    token,
                    &k.key,
                    &validation,
                )
                .ok()
                .map(|d| d.claims)
            })
    }

    async fn try_remote(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let remote = self
            .remote
            .as_ref()
            .ok_or("signature not valid for any key")?;
        let cached = {
            let cache = remote.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.as_ref().and_then(|f| {
                let fresh = f.at.elapsed() < remote.refresh;
                let found = self.try_keys(&f.keys, token, header);
                // A new kid may mean the issuer rotated keys: refetch, but
                // not more than every 30 s.
                let refetch =
                    !fresh || (found.is_none() && f.at.elapsed() > Duration::from_secs(30));
                (!refetch).then_some(found)
            })
        };
        if let Some(found) = cached {
            return found.ok_or_else(|| "signature not valid for any key".into());
        }
        let keys = fetch_keys(remote).await;
        let mut cache = remote.cache.lock().unwrap_or_else(|e| e.into_inner());
        match keys {
            Ok(keys) => {
                let found = self.try_keys(&keys, token, header);
                *cache = Some(Fetched {
                    at: Instant::now(),
                    keys,
                });
                found.ok_or_else(|| "signature not valid for any key".into())
            }
            Err(e) => {
                tracing::warn!(url = %remote.url, error = %e, "cannot fetch JWT signing keys");
                // Keep serving with the previous keys.
                cache
                    .as_ref()
                    .and_then(|f| self.try_keys(&f.keys, token, header))
                    .ok_or(e)
            }
        }
    }
}

async fn fetch_keys(remote: &Remote) -> Result<Vec<Key>, String> {
    let jwks_url = if remote.openid {
        let config: serde_json::Value = fetch::get_json(&remote.url).await?;
        config["jwks_uri"]
            .as_str()
            .ok_or("OpenID configuration has no jwks_uri")?
            .to_string()
    } else {
        remote.url.clone()
    };
    let set: JwkSet = fetch::get_json(&jwks_url).await?;
    Ok(set
        .keys
        .iter()
        .filter_map(|jwk| {
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                AlgorithmParameters::OctetKey(_) => Algorithm::HS256,
                AlgorithmParameters::OctetKeyPair(_) => return None,
            };
            Some(Key {
                alg,
                kid: jwk.common.key_id.clone(),
                key: DecodingKey::from_jwk(jwk).ok()?,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

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
        // No exp.
        let mut c = good;
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(run(POLICY, Some(&token(c))).await, Some(401));
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
