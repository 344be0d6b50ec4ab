//! The HTTP API: routing, authentication, and the one place errors become
//! responses. Admin routes (`/v1/...`, admin bearer token) run as one
//! blocking unit of store work each; the gateway routes
//! (`/v1/gateway/...`, gateway token) are the long-poll and heartbeats.

mod gateways;
pub mod http;
pub mod resources;

pub use self::resources::new_key;

use std::{convert::Infallible, sync::Arc};

use gateway_model::config::DELTA_CONTENT_TYPE;
use hyper::{Method, Request, StatusCode, body::Incoming, header};
use serde_json::{Value, json};

use self::http::Reply;
use crate::{
    analytics,
    error::ApiError,
    fleet, longpoll, openapi,
    state::{self, Lane, State, blocking},
    tokens, web,
};

/// A parsed admin request, handed to the blocking handlers.
pub struct AdminRequest {
    pub method: Method,
    /// Decoded path segments after `/v1`.
    pub segments: Vec<String>,
    pub query: Option<String>,
    pub body: bytes::Bytes,
}

impl AdminRequest {
    pub fn query(&self, key: &str) -> Option<String> {
        http::query_param(self.query.as_deref(), key)
    }
}

/// What an admin handler answers: a status and a JSON body (none for 204).
pub type Answer = (StatusCode, Option<Value>);

pub async fn handle(
    state: Arc<State>,
    peer: std::net::IpAddr,
    req: Request<Incoming>,
) -> Result<Reply, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let answer = route(&state, peer, req).await;
    let mut reply = match answer {
        Ok(reply) => reply,
        Err(err) => {
            if err.status.is_server_error() {
                tracing::error!(%method, %path, status = err.status.as_u16(), message = %err.message, "request failed");
            } else {
                tracing::info!(%method, %path, status = err.status.as_u16(), message = %err.message, "request refused");
            }
            http::error(&err)
        }
    };
    web::secure(&mut reply);
    Ok(reply)
}

async fn route(
    state: &Arc<State>,
    peer: std::net::IpAddr,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let segments: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(http::percent_decode)
        .collect();
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let creds = web::session::Credentials::from_headers(req.headers());
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    if state.gateway_certs_required
        && matches!(segs.as_slice(), ["v1", "gateway", ..])
        && !req
            .extensions()
            .get::<crate::state::ClientCertVerified>()
            .is_some_and(|v| v.0)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this control plane requires gateways to present a client certificate signed by its --tls-client-ca; set client_cert and client_key in the gateway's [control_plane] section",
        ));
    }
    match (req.method(), segs.as_slice()) {
        (&Method::GET, ["healthz"]) => Ok(http::json(StatusCode::OK, &json!({"status": "ok"}))),
        (&Method::GET | &Method::HEAD, []) => Ok(web::root()),
        (&Method::GET | &Method::HEAD, ["ui" | "portal" | "assets", ..]) => {
            let accept = req.headers().get(hyper::header::ACCEPT_ENCODING);
            Ok(web::assets::get(
                req.uri().path(),
                accept.and_then(|v| v.to_str().ok()),
            ))
        }
        (_, ["v1", "session"]) => web::session_route(state, peer, req).await,
        (_, ["v1", "portal", rest @ ..]) => {
            let rest = rest.iter().map(|s| s.to_string()).collect();
            web::portal::route(state, peer, req, rest).await
        }
        (&Method::GET, ["v1", "gateway", "config"]) => {
            let wait =
                longpoll::parse_wait(http::query_param(req.uri().query(), "wait").as_deref())?;
            let known = req
                .headers()
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .and_then(longpoll::parse_etag);
            let accepts_delta = req
                .headers()
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains(DELTA_CONTENT_TYPE));
            let gateway = blocking(state, Lane::Gateway, move |s| {
                s.store.read(|c| tokens::verify_gateway(c, auth.as_deref()))
            })
            .await?;
            Ok(
                match longpoll::config(state, gateway, known, accepts_delta, wait).await? {
                    longpoll::Answer::Bundle { version, body } => {
                        http::tagged(http::text(StatusCode::OK, body), version)
                    }
                    longpoll::Answer::Delta { version, body } => {
                        let mut reply = http::text(StatusCode::OK, body);
                        reply.headers_mut().insert(
                            header::CONTENT_TYPE,
                            header::HeaderValue::from_static(DELTA_CONTENT_TYPE),
                        );
                        http::tagged(reply, version)
                    }
                    longpoll::Answer::NotModified { version } => {
                        http::tagged(http::empty(StatusCode::NOT_MODIFIED), version)
                    }
                },
            )
        }
        (&Method::POST, ["v1", "gateway", "heartbeat"]) => {
            let body = http::read_body(req, http::MAX_BODY).await?;
            let fleet = blocking(state, Lane::Gateway, move |s| {
                let gateway = s
                    .store
                    .read(|c| tokens::verify_gateway(c, auth.as_deref()))?;
                let hb: fleet::Heartbeat = crate::model::parse("heartbeat", &body)?;
                s.store.write(|tx| fleet::record(tx, &gateway, hb))
            })
            .await?;
            Ok(http::json(StatusCode::OK, &fleet))
        }
        (&Method::POST, ["v1", "gateway", "analytics"]) => {
            let body = http::read_body(req, http::MAX_ANALYTICS).await?;
            let fresh = blocking(state, Lane::Gateway, move |s| {
                let gateway = s
                    .store
                    .read(|c| tokens::verify_gateway(c, auth.as_deref()))?;
                let batch: gateway_model::analytics::Batch =
                    crate::model::parse("analytics batch", &body)?;
                let now = crate::clock::now();
                s.store.write(|tx| {
                    let fresh = analytics::ingest::record(tx, &gateway, &batch, now)?;
                    if s.analytics.rollup_due(now) {
                        let rolled = analytics::rollup::run(tx, &s.analytics, now)?;
                        tracing::debug!(?rolled, "analytics rolled up");
                    }
                    Ok::<_, ApiError>(fresh)
                })
            })
            .await?;
            Ok(http::json(
                StatusCode::OK,
                &json!({"accepted": true, "duplicate": !fresh}),
            ))
        }
        (_, ["v1", "gateway", ..]) => Err(ApiError::not_found(
            "gateway routes are GET /v1/gateway/config, POST /v1/gateway/heartbeat and POST /v1/gateway/analytics",
        )),
        (_, ["v1", rest @ ..]) => {
            // OpenAPI documents and whole catalogs are larger than one resource.
            let limit = if rest == ["apis", "import"]
                || rest == ["catalog", "apply"]
                || rest == ["import", "apim"]
            {
                http::MAX_IMPORT
            } else {
                http::MAX_BODY
            };
            let method = req.method().clone();
            let query = req.uri().query().map(String::from);
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            // The (bounded) body is read even when the token is refused:
            // HTTP/2 clients report an answer before the body as an error.
            let body = http::read_body(req, limit).await?;
            let request = AdminRequest {
                method,
                segments: rest,
                query,
                body,
            };
            let (status, value) =
                if request.method == Method::POST && request.segments == ["apis", "import"] {
                    import(state, creds, request).await?
                } else {
                    blocking(state, Lane::Admin, move |s| {
                        let label = s
                            .store
                            .read(|c| web::session::admin(c, &creds, &request.method))?;
                        let answer = admin(s, &request);
                        audit(&label, &request, &answer);
                        answer
                    })
                    .await?
                };
            Ok(match value {
                Some(v) => http::json(status, &v),
                None => http::empty(status),
            })
        }
        _ => Err(ApiError::not_found(format!(
            "no route for {} {}; the management API is under /v1 (see control-plane/README.md)",
            req.method(),
            req.uri().path()
        ))),
    }
}

/// `POST /v1/apis/import`: the token is checked first, the document is
/// parsed and planned in the documents lane (holding no store slot), and
/// only the write takes an admin slot.
async fn import(
    state: &Arc<State>,
    creds: web::session::Credentials,
    request: AdminRequest,
) -> Result<Answer, ApiError> {
    let label = blocking(state, Lane::Admin, move |s| {
        s.store
            .read(|c| web::session::admin(c, &creds, &Method::POST))
    })
    .await?;
    let query = request.query.clone();
    let body = request.body.clone();
    let prepared = state::document(state, move || openapi::prepare(query.as_deref(), &body)).await;
    blocking(state, Lane::Admin, move |s| {
        let answer = prepared.and_then(|p| openapi::import(s, p));
        audit(&label, &request, &answer);
        answer
    })
    .await
}

/// The audit trail of changes: who, what, and the outcome.
fn audit(label: &str, request: &AdminRequest, answer: &Result<Answer, ApiError>) {
    if request.method != Method::GET {
        let status = match answer {
            Ok((status, _)) => *status,
            Err(e) => e.status,
        };
        tracing::info!(admin = %label, method = %request.method, path = %format!("/v1/{}", request.segments.join("/")), status = status.as_u16(), "admin write");
    }
}

/// Dispatches an authenticated admin request.
fn admin(state: &State, req: &AdminRequest) -> Result<Answer, ApiError> {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["gateways", ..] | ["signing-key", ..] => gateways::handle(state, req, &segs),
        ["catalog"] => match req.method {
            Method::GET => Ok((StatusCode::OK, Some(crate::apply::export(state)?))),
            _ => Err(method_not_allowed(req, "GET")),
        },
        ["catalog", "apply"] => match req.method {
            Method::POST => {
                let (dry_run, prune) = (flag(req, "dry_run")?, flag(req, "prune")?);
                match crate::apply::apply(state, &req.body, dry_run, prune) {
                    Ok(diff) => Ok((StatusCode::OK, Some(diff))),
                    Err(refusal) => refusal.into_answer(),
                }
            }
            _ => Err(method_not_allowed(req, "POST")),
        },
        ["import", "apim"] => match req.method {
            Method::POST => crate::apiops::import(
                state,
                &req.body,
                flag(req, "dry_run")?,
                flag(req, "partial")?,
            ),
            _ => Err(method_not_allowed(req, "POST")),
        },
        ["analytics", rest @ ..] => {
            let answer = match (&req.method, rest) {
                (&Method::GET, []) => state.store.read(|c| analytics::query::requests(c, req))?,
                (&Method::GET, ["drops"]) => {
                    state.store.read(|c| analytics::query::drops(c, req))?
                }
                (_, [] | ["drops"]) => return Err(method_not_allowed(req, "GET")),
                _ => {
                    return Err(ApiError::not_found(
                        "analytics routes are GET /v1/analytics and GET /v1/analytics/drops",
                    ));
                }
            };
            Ok((StatusCode::OK, Some(answer)))
        }
        ["apis", _, "docs"]
        | ["published-products", ..]
        | ["consumers", ..]
        | ["consumer-subscriptions", ..] => web::operator::handle(state, req, &segs),
        _ => resources::handle(state, req, &segs),
    }
}

/// 405 naming what the route allows.
/// A `?name=true` switch of a write (`dry_run`, `prune`, `partial`).
fn flag(req: &AdminRequest, name: &str) -> Result<bool, ApiError> {
    match req.query(name).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") | Some("") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "{name}={other:?}: use {name}=true or leave it out"
        ))),
    }
}

pub fn method_not_allowed(req: &AdminRequest, allowed: &str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on /v1/{}; use {allowed}",
            req.method,
            req.segments.join("/")
        ),
    )
}
