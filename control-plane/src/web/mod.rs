//! The web console (`/ui`) and developer portal (`/portal`): their pages
//! (`assets`), browser sessions (`session`), the portal's consumer routes
//! (`portal`), the operator's routes for consumers and published products
//! (`operator`), and API docs (`docs`). The pages use the same `/v1` API
//! as scripts; a session cookie stands in for the bearer token.

pub mod assets;
pub mod docs;
pub mod operator;
pub mod portal;
pub mod session;

use std::{net::IpAddr, sync::Arc};

use hyper::{Method, Request, StatusCode, body::Incoming, header};
use serde::Deserialize;

use self::session::{Credentials, Kind};
use crate::{
    api::http::{self, Reply},
    error::ApiError,
    model,
    state::{Lane, State, blocking},
    tokens,
};

/// Settings of the web pages, and the sign-in limiter.
pub struct Settings {
    /// Lifetime of a session, seconds.
    pub session_ttl: u64,
    /// Gateways the portal's try-it form may send requests through.
    pub portal_gateways: Vec<String>,
    pub limiter: session::Limiter,
}

impl Settings {
    pub fn new(session_ttl: u64, portal_gateways: Vec<String>) -> Settings {
        Settings {
            session_ttl,
            portal_gateways,
            limiter: session::Limiter::new(),
        }
    }
}

/// The pages' Content-Security-Policy: scripts, styles and requests from
/// this origin only (nothing inline, nothing from elsewhere), no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Security headers on every answer (pages and API alike).
pub fn secure(reply: &mut Reply) {
    let h = reply.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        h.insert(name, header::HeaderValue::from_static(value));
    }
}

/// `/` sends browsers to the console.
pub fn root() -> Reply {
    let mut reply = http::empty(StatusCode::FOUND);
    reply
        .headers_mut()
        .insert(header::LOCATION, header::HeaderValue::from_static("/ui/"));
    reply
}

/// `reply` with `Set-Cookie`.
pub fn with_cookie(mut reply: Reply, cookie: String) -> Reply {
    reply.headers_mut().insert(
        header::SET_COOKIE,
        header::HeaderValue::from_str(&cookie).expect("the cookie is ASCII"),
    );
    reply
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenSignIn {
    token: String,
}

/// `/v1/session`: POST signs an operator in with an admin token, GET
/// answers the session (kind, subject, CSRF token, expiry), DELETE signs
/// out (either kind).
pub async fn session_route(
    state: &Arc<State>,
    peer: IpAddr,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let creds = Credentials::from_headers(req.headers());
    let method = req.method().clone();
    let body = http::read_body(req, http::MAX_BODY).await?;
    match method {
        Method::POST => {
            state.web.limiter.check(peer)?;
            let sign_in: TokenSignIn = model::parse("sign-in", &body)?;
            if sign_in.token.trim().is_empty() {
                return Err(ApiError::bad_request(
                    "enter an admin token (create one with `edgegw-cp admin-token create`)",
                ));
            }
            let ttl = state.web.session_ttl;
            let opened = blocking(state, Lane::Admin, move |s| {
                let bearer = format!("Bearer {}", sign_in.token.trim());
                let label = s.store.read(|c| tokens::check_admin(c, Some(&bearer)))?;
                Ok(s.store
                    .write(|c| session::create(c, Kind::Admin, &label, ttl))?)
            })
            .await;
            match opened {
                Ok((id, session)) => {
                    tracing::info!(admin = %session.subject, %peer, "console sign-in");
                    Ok(with_cookie(
                        http::json(StatusCode::CREATED, &session.shown()),
                        session::cookie(Some(&id)),
                    ))
                }
                Err(e) => {
                    if e.status == StatusCode::UNAUTHORIZED {
                        tracing::warn!(%peer, "console sign-in refused: {}", e.message);
                        state.web.limiter.failed(peer);
                    }
                    Err(e)
                }
            }
        }
        Method::GET => {
            let id = creds.session.clone().ok_or_else(|| {
                ApiError::unauthorized("no session (signed out, or never signed in); sign in")
            })?;
            let session = blocking(state, Lane::Admin, move |s| {
                s.store.read(|c| session::find(c, &id))
            })
            .await?;
            Ok(http::json(StatusCode::OK, &session.shown()))
        }
        Method::DELETE => {
            let Some(id) = creds.session.clone() else {
                return Ok(with_cookie(
                    http::empty(StatusCode::NO_CONTENT),
                    session::cookie(None),
                ));
            };
            blocking(state, Lane::Admin, move |s| {
                let session = s.store.read(|c| session::find(c, &id));
                // An expired or unknown session is gone already; a live one
                // needs its CSRF token (signing someone out is a write too).
                if let Ok(session) = &session {
                    session::check_csrf(&Method::DELETE, session, &creds)?;
                }
                Ok(s.store.write(|c| session::delete(c, &id))?)
            })
            .await?;
            Ok(with_cookie(
                http::empty(StatusCode::NO_CONTENT),
                session::cookie(None),
            ))
        }
        _ => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on /v1/session; use POST, GET or DELETE"),
        )),
    }
}
