//! `authentication-managed-identity`: a token for the backend from the
//! gateway's `[identity]` (OAuth 2.0 client credentials), cached per
//! scope and client id until a minute before it expires. One request at
//! a time asks the token endpoint for a given cache; the others wait for
//! its answer instead of asking again. A failure is remembered for a few
//! seconds, so that an endpoint that is down or hangs costs one request
//! (and its timeout) per scope, not a queue of them.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use edgegw_policy_expr::Value;
use gateway_model::{
    config::{Credential, Identity},
    policy::authentication_managed_identity::AuthenticationManagedIdentitySpec,
};
use hyper::{
    HeaderMap, StatusCode,
    header::{AUTHORIZATION, HeaderValue},
};
use serde::Deserialize as _;

use super::{
    context::Ctx,
    expr::Failed,
    fetch,
    respond::{Answer, refusal},
};

const POLICY: &str = "authentication-managed-identity";
/// Tokens are renewed this long before they expire.
const EARLY: Duration = Duration::from_secs(60);
/// How long a failed token request answers for the next ones.
const FAILED_FOR: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct ManagedIdentity {
    spec: AuthenticationManagedIdentitySpec,
    scope: String,
    /// `None`: the node has no `[identity]` (refused at load).
    tokens: Option<Arc<Tokens>>,
}

impl ManagedIdentity {
    pub fn new(spec: &AuthenticationManagedIdentitySpec, tokens: Option<Arc<Tokens>>) -> Self {
        ManagedIdentity {
            scope: spec.scope(),
            spec: spec.clone(),
            tokens,
        }
    }

    /// The node's token for the resource.
    pub async fn token(&self) -> Result<Arc<str>, String> {
        match &self.tokens {
            Some(t) => t.get(&self.scope, self.spec.client_id.as_deref()).await,
            None => Err("this gateway has no [identity] section".into()),
        }
    }

    /// A request of `send-request`'s own, with the token as its Bearer
    /// header; without one (logged) when `ignore_error`.
    pub async fn authorize(&self, headers: &mut HeaderMap) -> Result<(), String> {
        match self.token().await {
            Ok(token) => set_bearer(headers, &token),
            Err(why) if self.spec.ignore_error => {
                tracing::warn!(policy = POLICY, resource = %self.spec.resource, "{why}");
            }
            Err(why) => {
                return Err(format!(
                    "Could not obtain a token for {}: {why}",
                    self.spec.resource
                ));
            }
        }
        Ok(())
    }

    /// Sets `Authorization: Bearer <token>` (or the output variable);
    /// a token that cannot be had is the answer, unless `ignore_error`.
    pub async fn apply(&self, ctx: &mut Ctx<'_>) -> Option<Answer> {
        let token = self.token().await;
        let token = match token {
            Ok(t) => t,
            Err(why) => {
                tracing::warn!(policy = POLICY, resource = %self.spec.resource, "{why}");
                if self.spec.ignore_error {
                    return None;
                }
                let mut answer =
                    refusal(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
                answer.extensions_mut().insert(Failed {
                    source: POLICY,
                    reason: "TokenAcquisitionFailure",
                    message: format!("Could not obtain a token for {}: {why}", self.spec.resource),
                });
                return Some(answer);
            }
        };
        match &self.spec.output_variable {
            Some(name) => {
                ctx.variables
                    .insert(name.clone(), Value::string(token.to_string()));
            }
            None => set_bearer(ctx.headers, &token),
        }
        None
    }
}

fn set_bearer(headers: &mut HeaderMap, token: &str) {
    // `Tokens::fetch` keeps only tokens valid in a header.
    if let Ok(v) = HeaderValue::try_from(format!("Bearer {token}")) {
        headers.insert(AUTHORIZATION, v);
    }
}

/// A token (or why there is none) by (scope, client id), with when it
/// stops being used.
type Cached = HashMap<(String, String), (Result<Arc<str>, Arc<str>>, Instant)>;

/// The token cache of one `[identity]`, shared by every policy using it.
pub struct Tokens {
    identity: Identity,
    cached: Mutex<Cached>,
    /// Held while asking the endpoint, so that concurrent misses ask once.
    asking: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("token_url", &self.identity.token_url)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    /// Seconds; Entra ID's v1 endpoint writes it as a string.
    #[serde(default, deserialize_with = "number_or_text")]
    expires_in: Option<u64>,
}

fn number_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum N {
        Number(u64),
        Text(String),
    }
    Ok(match Option::<N>::deserialize(d)? {
        Some(N::Number(n)) => Some(n),
        Some(N::Text(t)) => t.trim().parse().ok(),
        None => None,
    })
}

impl Tokens {
    pub fn new(identity: Identity) -> Tokens {
        Tokens {
            identity,
            cached: Mutex::default(),
            asking: tokio::sync::Mutex::new(()),
        }
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    fn fresh(&self, key: &(String, String)) -> Option<Result<Arc<str>, String>> {
        let cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        cached
            .get(key)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| t.clone().map_err(|why| format!("{why} (a moment ago)")))
    }

    /// A token for `scope`, for `client_id` (default: the identity's).
    pub async fn get(&self, scope: &str, client_id: Option<&str>) -> Result<Arc<str>, String> {
        let client = client_id.unwrap_or(&self.identity.client_id);
        let key = (scope.to_string(), client.to_string());
        if let Some(t) = self.fresh(&key) {
            return t;
        }
        let _asking = self.asking.lock().await;
        // Another request may have asked while this one waited.
        if let Some(t) = self.fresh(&key) {
            return t;
        }
        let fetched = self.fetch(scope, client).await;
        let now = Instant::now();
        let (kept, until): (Result<Arc<str>, Arc<str>>, Instant) = match fetched {
            Ok((token, lifetime)) => (Ok(token), now + lifetime.saturating_sub(EARLY)),
            Err(why) => (Err(why.into()), now + FAILED_FOR),
        };
        self.cached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, (kept.clone(), until));
        kept.map_err(|why| why.to_string())
    }

    async fn fetch(&self, scope: &str, client: &str) -> Result<(Arc<str>, Duration), String> {
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p)
                .map(|t| t.trim().to_string())
                .map_err(|e| format!("[identity] {}: {e}", p.display()))
        };
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", client.to_string()),
            ("scope", scope.to_string()),
        ];
        match &self.identity.credential {
            Credential::SecretFile(p) => form.push(("client_secret", read(p)?)),
            Credential::FederatedTokenFile(p) => {
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string(),
                ));
                form.push(("client_assertion", read(p)?));
            }
        }
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer: TokenAnswer = fetch::post_form_json(&self.identity.token_url, &pairs).await?;
        let token = answer.access_token;
        if token.is_empty() || HeaderValue::try_from(format!("Bearer {token}")).is_err() {
            return Err(format!(
                "{}: the access_token is empty or not valid in a header",
                self.identity.token_url
            ));
        }
        // Without expires_in, OAuth leaves the lifetime to the server:
        // keep it briefly.
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(300));
        Ok((token.into(), lifetime))
    }
}
