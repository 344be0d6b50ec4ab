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

use gateway_model::policy::validate_jwt::ValidateJwtSpec;
use serde_json::{Map, Value as Json};

use self::{
    claims::Constraints,
    jwks::{Jwks, Source},
    keys::{ALGORITHMS, Key},
};
use super::{context::Ctx, respond};
use crate::state_registry::Staging;

pub struct ValidateJwt {
    header: String,
    query: Option<String>,
    status: hyper::StatusCode,
    message: String,
    constraints: Constraints,
    inline: Vec<Key>,
    remote: Option<Remote>,
    /// `output-token-variable-name`: the variable that receives the token.
    output: Option<String>,
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
    pub fn new(spec: &ValidateJwtSpec, staging: &mut Staging) -> Self {
        let inline = spec
            .inline
            .iter()
            .filter_map(|k| {
                // The model checked the key as the library reads it
                // (`keys.rs` tests the two agree): this does not fail.
                Key::inline(k)
                    .inspect_err(
                        |e| tracing::error!(error = %e, "validate-jwt: inline key skipped"),
                    )
                    .ok()
            })
            .collect();
        let remote = spec.remote.as_ref().map(|r| Remote {
            jwks: Jwks::shared(
                Source {
                    url: r.url.clone(),
                    openid: r.openid,
                },
                staging,
            ),
            refresh: r.refresh,
        });
        let claims = &spec.claims;
        ValidateJwt {
            header: spec.header.clone(),
            query: spec.query.clone(),
            status: spec.status,
            message: spec.message.clone(),
            constraints: Constraints {
                issuers: claims.issuers.clone(),
                audiences: claims.audiences.clone(),
                required: claims.required.clone(),
                client_applications: claims.client_applications.clone(),
                require_exp: claims.require_exp,
                skew: claims.skew,
            },
            inline,
            remote,
            output: spec.output_variable.clone(),
        }
    }

    pub async fn check(&self, ctx: &mut Ctx<'_>) -> Option<respond::Answer> {
        match self.validate(ctx).await {
            Ok((claims, token)) => {
                ctx.jwt_claims = Some(claims);
                // A `Jwt` for expressions (`(Jwt)context.Variables["jwt"]`).
                if let Some(name) = &self.output
                    && let Some(jwt) = edgegw_policy_expr::Jwt::decode(&token)
                {
                    let value = edgegw_policy_expr::Value::Jwt(Arc::new(jwt));
                    ctx.variables.insert(name.clone(), value);
                }
                None
            }
            Err(reason) => {
                tracing::debug!(%reason, api = ctx.api, "JWT rejected");
                Some(respond::refusal(self.status, &self.message))
            }
        }
    }

    /// The token's claims, and the token.
    async fn validate(&self, ctx: &Ctx<'_>) -> Result<(Map<String, Json>, String), String> {
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
        Ok((claims, token))
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

    fn parse(policy: &str) -> ValidateJwt {
        ValidateJwt::new(
            &ValidateJwtSpec::parse(serde_yaml::from_str(policy).unwrap()).unwrap(),
            &mut Staging::fresh(),
        )
    }

    async fn run(policy: &str, bearer: Option<&str>) -> Option<u16> {
        let p = parse(policy);
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
        let p = parse(policy);
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
}
