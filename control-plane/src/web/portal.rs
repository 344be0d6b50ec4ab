//! The developer portal's routes, `/v1/portal/...`: accounts (argon2
//! password hashes), the published catalog and its docs, the consumer's
//! own subscriptions, keys and usage, and the try-it form. Every answer
//! holds only what is the signed-in consumer's own, or published.

use std::{collections::HashSet, net::IpAddr, sync::Arc, time::Duration};

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode, body::Incoming};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    docs,
    operator::{self, subscriptions_of},
    session::{self, Credentials, Kind},
    with_cookie,
};
use crate::{
    api::{AdminRequest, http},
    clock,
    error::ApiError,
    model,
    state::{Lane, State, blocking},
    store::{Conn, Kind as Resource, resources},
};

/// Shortest password accepted.
const MIN_PASSWORD: usize = 10;
/// Largest body of a try-it answer shown.
const MAX_TRY_BODY: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Account {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscribe {
    product: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Try {
    gateway: String,
    method: String,
    path: String,
    #[serde(default)]
    key: String,
}

pub async fn route(
    state: &Arc<State>,
    peer: IpAddr,
    req: Request<Incoming>,
    segs: Vec<String>,
) -> Result<http::Reply, ApiError> {
    let creds = Credentials::from_headers(req.headers());
    let method = req.method().clone();
    let query = req.uri().query().map(String::from);
    let body = http::read_body(req, http::MAX_BODY).await?;
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let ttl = state.web.session_ttl;
    match (&method, segs.as_slice()) {
        (&Method::POST, [which @ ("signup" | "signin")]) => {
            state.web.limiter.check(peer)?;
            let account: Account = model::parse("account", &body)?;
            let signup = *which == "signup";
            let opened = blocking(state, Lane::Admin, move |s| {
                let email = account.email.trim().to_ascii_lowercase();
                if signup {
                    check_account(&email, &account.password)?;
                    let hash = hash(&account.password)?;
                    s.store.write(|c| {
                        let exists = c
                            .query_opt("SELECT email FROM consumers WHERE email = ?1", &[(&email).into()])?
                            .is_some();
                        if exists {
                            return Err(ApiError::conflict(format!(
                                "an account for {email} exists already; sign in"
                            )));
                        }
                        c.execute(
                            "INSERT INTO consumers (email, password, created_at) VALUES (?1, ?2, ?3)",
                            &[(&email).into(), (&hash).into(), clock::now().into()],
                        )?;
                        Ok(session::create(c, Kind::Consumer, &email, ttl)?)
                    })
                } else {
                    let stored = s.store.read(|c| {
                        c.query_opt("SELECT password FROM consumers WHERE email = ?1", &[(&email).into()])?
                            .map(|r| r.text(0))
                            .transpose()
                            .map_err(ApiError::from)
                    })?;
                    if !verify(stored.as_deref(), &account.password) {
                        return Err(ApiError::unauthorized("wrong email or password"));
                    }
                    Ok(s.store.write(|c| session::create(c, Kind::Consumer, &email, ttl))?)
                }
            })
            .await;
            match opened {
                Ok((id, session)) => Ok(with_cookie(
                    http::json(StatusCode::CREATED, &session.shown()),
                    session::cookie(Some(&id)),
                )),
                Err(e) => {
                    if e.status == StatusCode::UNAUTHORIZED {
                        tracing::warn!(%peer, "portal sign-in refused");
                        state.web.limiter.failed(peer);
                    }
                    Err(e)
                }
            }
        }
        (&Method::POST, ["try"]) => {
            blocking(state, Lane::Admin, {
                let (creds, method) = (creds.clone(), method.clone());
                move |s| s.store.read(|c| session::consumer(c, &creds, &method))
            })
            .await?;
            let t: Try = model::parse("try-it request", &body)?;
            try_it(state, t).await
        }
        _ => {
            let segs: Vec<String> = segs.iter().map(|s| s.to_string()).collect();
            let (status, value) = blocking(state, Lane::Admin, move |s| {
                let email = s.store.read(|c| session::consumer(c, &creds, &method))?;
                let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
                consumer_route(s, &email, &method, &segs, query.as_deref(), &body)
            })
            .await?;
            Ok(match value {
                Some(v) => http::json(status, &v),
                None => http::empty(status),
            })
        }
    }
}

/// The signed-in consumer's routes.
fn consumer_route(
    state: &State,
    email: &str,
    method: &Method,
    segs: &[&str],
    query: Option<&str>,
    body: &[u8],
) -> Result<(StatusCode, Option<Value>), ApiError> {
    match (method, segs) {
        (&Method::GET, ["products"]) => Ok((StatusCode::OK, Some(state.store.read(products)?))),
        (&Method::GET, ["apis", name]) => {
            let docs = state.store.read(|c| {
                if !published_apis(c)?.contains(*name) {
                    return Err(ApiError::not_found(format!(
                        "no published API \"{name}\"; see the products for what is published"
                    )));
                }
                docs::get(c, name)
            })?;
            Ok((StatusCode::OK, Some(docs)))
        }
        (&Method::GET, ["gateways"]) => {
            Ok((StatusCode::OK, Some(json!(state.web.portal_gateways))))
        }
        (&Method::GET, ["subscriptions"]) => {
            let subs = state.store.read(|c| {
                subscriptions_of(c, email)?
                    .iter()
                    .map(|s| s.shown(c))
                    .collect::<Result<Vec<_>, _>>()
            })?;
            Ok((StatusCode::OK, Some(Value::Array(subs))))
        }
        (&Method::POST, ["subscriptions"]) => {
            let want: Subscribe = model::parse("subscription", body)?;
            subscribe(state, email, &want.product)
        }
        (&Method::POST, ["subscriptions", id, "regenerate"]) => {
            owned(state, email, id)?;
            let which = http::query_param(query, "key").unwrap_or_default();
            crate::api::resources::regenerate_key(state, id, &which)
        }
        (&Method::GET, ["usage"]) => Ok((StatusCode::OK, Some(usage(state, email)?))),
        (&Method::GET, ["me"]) => Ok((StatusCode::OK, Some(json!({"email": email})))),
        _ => Err(ApiError::not_found(format!(
            "no portal route {method} /v1/portal/{}",
            segs.join("/")
        ))),
    }
}

/// 404 unless subscription `id` is `email`'s (someone else's is as
/// unknown as one that does not exist).
fn owned(state: &State, email: &str, id: &str) -> Result<(), ApiError> {
    let mine = state
        .store
        .read(|c| Ok::<_, ApiError>(subscriptions_of(c, email)?.iter().any(|s| s.id == id)))?;
    if mine {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "you have no subscription \"{id}\""
        )))
    }
}

fn check_account(email: &str, password: &str) -> Result<(), ApiError> {
    let ok_email = (3..=254).contains(&email.len())
        && email
            .split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && b.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok_email {
        return Err(ApiError::bad_request(format!(
            "\"{email}\" is not an email address; give one such as dev@example.com"
        )));
    }
    let n = password.chars().count();
    if !(MIN_PASSWORD..=1024).contains(&n) {
        return Err(ApiError::bad_request(format!(
            "the password has {n} characters; choose one of {MIN_PASSWORD} to 1024"
        )));
    }
    Ok(())
}

/// An argon2id hash (default parameters, random salt) as a PHC string.
fn hash(password: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("hashing the password: {e}"),
            )
        })
}

/// Whether `password` matches the stored hash; an unknown account is
/// checked against a hash of nothing, so both take the same time.
fn verify(stored: Option<&str>, password: &str) -> bool {
    static NOBODY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash("nobody's password").unwrap_or_default());
    let parsed = PasswordHash::new(stored.unwrap_or(&NOBODY));
    let ok = parsed.as_ref().is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), h)
            .is_ok()
    });
    ok && stored.is_some()
}

/// Published products with their APIs: `[{name, approval_required, apis:
/// [{name, path, title}]}]`.
fn products(conn: &Conn) -> Result<Value, ApiError> {
    let mut out = Vec::new();
    for p in operator::published(conn)? {
        let name = p["product"].as_str().unwrap_or_default().to_string();
        let Some(product) = resources::get(conn, Resource::Product, &name)? else {
            continue;
        };
        let mut apis = Vec::new();
        for api in product["apis"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let api = api.as_str().unwrap_or_default();
            if let Ok(d) = docs::get(conn, api) {
                apis.push(json!({"name": api, "path": d["path"], "title": d["title"]}));
            }
        }
        out.push(json!({"name": name, "approval_required": p["approval_required"], "apis": apis}));
    }
    Ok(Value::Array(out))
}

/// Names of the APIs in published products.
fn published_apis(conn: &Conn) -> Result<HashSet<String>, ApiError> {
    let mut out = HashSet::new();
    for p in operator::published(conn)? {
        let name = p["product"].as_str().unwrap_or_default();
        if let Some(product) = resources::get(conn, Resource::Product, name)? {
            for api in product["apis"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                out.extend(api.as_str().map(String::from));
            }
        }
    }
    Ok(out)
}

/// A new subscription of `email` to a published product: active at once,
/// or suspended until an operator approves it. The keys are shown once.
fn subscribe(
    state: &State,
    email: &str,
    product: &str,
) -> Result<(StatusCode, Option<Value>), ApiError> {
    let id = format!(
        "portal-{}",
        gateway_model::keys::to_hex(&crate::tokens::random_bytes(6))
    );
    let (primary, p_hash) = crate::api::resources::new_key();
    let (secondary, s_hash) = crate::api::resources::new_key();
    let pending = state.write(|tx| {
        let published = operator::published(tx)?;
        let Some(p) = published.iter().find(|p| p["product"] == product) else {
            return Err(ApiError::not_found(format!(
                "no published product \"{product}\"; see the products for what is published"
            )));
        };
        let pending = p["approval_required"] == true;
        let doc = json!({
            "id": id,
            "scope": format!("product:{product}"),
            "state": if pending { "suspended" } else { "active" },
            "primary_key_sha256": p_hash,
            "secondary_key_sha256": s_hash,
        });
        resources::put(tx, Resource::Subscription, &id, &doc)?;
        tx.execute(
            "INSERT INTO consumer_subscriptions (subscription, consumer, product, pending, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                (&id).into(),
                email.into(),
                product.into(),
                i64::from(pending).into(),
                clock::now().into(),
            ],
        )?;
        Ok(pending)
    })?;
    Ok((
        StatusCode::CREATED,
        Some(json!({
            "id": id,
            "product": product,
            "state": if pending { "suspended" } else { "active" },
            "pending": pending,
            "primary_key": primary,
            "secondary_key": secondary,
        })),
    ))
}

/// Requests per day of the consumer's own subscriptions, last 90 days.
fn usage(state: &State, email: &str) -> Result<Value, ApiError> {
    state.store.read(|c| {
        let mine: HashSet<String> = subscriptions_of(c, email)?
            .into_iter()
            .map(|s| s.id)
            .collect();
        let query = AdminRequest {
            method: Method::GET,
            segments: vec!["analytics".into()],
            query: Some("group_by=subscription&from=-90d&step=1d".into()),
            body: Bytes::new(),
        };
        let mut answer = crate::analytics::query::requests(c, &query)?;
        if let Some(rows) = answer["rows"].as_array_mut() {
            rows.retain(|r| r["subscription"].as_str().is_some_and(|s| mine.contains(s)));
        }
        Ok(answer)
    })
}

/// Sends one request through an offered gateway (`--portal-gateway`) with
/// the consumer's key, and answers its status and (the start of) its body.
async fn try_it(state: &Arc<State>, t: Try) -> Result<http::Reply, ApiError> {
    if !state.web.portal_gateways.contains(&t.gateway) {
        return Err(ApiError::bad_request(format!(
            "gateway \"{}\" is not offered for trying; choose one of: {}",
            t.gateway,
            state.web.portal_gateways.join(", ")
        )));
    }
    let method: Method = match t.method.to_ascii_uppercase().as_str() {
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS") => {
            m.parse().expect("a known method")
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "method \"{other}\" cannot be tried; use GET, POST, PUT, DELETE, PATCH, HEAD or OPTIONS"
            )));
        }
    };
    if !t.path.starts_with('/') || t.path.starts_with("//") || t.path.contains(char::is_whitespace)
    {
        return Err(ApiError::bad_request(format!(
            "path \"{}\" must start with one / and hold no spaces",
            t.path
        )));
    }
    let uri: hyper::Uri = format!("{}{}", t.gateway, t.path)
        .parse()
        .map_err(|e| ApiError::bad_request(format!("path \"{}\": {e}", t.path)))?;
    let mut builder = Request::builder().method(method).uri(uri);
    if !t.key.is_empty() {
        builder = builder.header("Ocp-Apim-Subscription-Key", t.key.trim());
    }
    let request = builder
        .body(Full::new(Bytes::new()))
        .map_err(|e| ApiError::bad_request(format!("try-it request: {e}")))?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let gateway = t.gateway.clone();
    let unreachable = |e: String| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("gateway {gateway} did not answer: {e}"),
        )
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        let res = client.request(request).await.map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        let body = match Limited::new(res.into_body(), MAX_TRY_BODY).collect().await {
            Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
            Err(_) => format!("(the body is larger than {MAX_TRY_BODY} bytes)"),
        };
        Ok::<_, String>((status, body))
    })
    .await
    .map_err(|_| unreachable("no answer within 10 s".into()))?
    .map_err(unreachable)?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"status": answer.0, "body": answer.1}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hashed_with_argon2_and_verified() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify(Some(&h), "correct horse battery"));
        assert!(!verify(Some(&h), "wrong horse battery"));
        assert!(!verify(None, "correct horse battery"));
        assert!(!verify(Some("not a hash"), "x"));
    }

    #[test]
    fn accounts_need_an_address_and_a_long_password() {
        check_account("dev@example.com", "0123456789").unwrap();
        for (email, password, want) in [
            ("dev", "0123456789", "not an email"),
            ("a b@example.com", "0123456789", "not an email"),
            ("dev@example.com", "short", "5 characters"),
        ] {
            let e = check_account(email, password).unwrap_err();
            assert!(e.message.contains(want), "{}", e.message);
        }
    }
}
