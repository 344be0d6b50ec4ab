//! One request, from routing to the backend's response: route, check the
//! body limit, rewrite headers, forward with timeouts, classify failures.
//! Every outcome, error or not, goes through `observe` (access log, metrics).

use std::{
    borrow::Cow,
    net::SocketAddr,
    sync::{Arc, atomic::AtomicU64},
    time::{Instant, SystemTime},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::{HeaderMap, Request, Response, StatusCode, Uri, body::Body, header};

use super::{
    BoxError, Gateway, ProxyBody, SharedGateway,
    backend::{Answer, Outgoing},
    backend_error::BackendError,
    deadline,
    gate::{self, Admission, Admitted},
    h1_server::MoreHeaders,
    headers::{Added, ClientIp, Trace, strip_hop_by_hop},
    limits::Activity,
    observe::{Counted, Logged, Observed, Record},
    request_checks,
    respond::{self, ProxyError, Refusal},
    router::NoRoute,
    upgrade::{self, Asked},
};
use crate::{
    admin::{Metrics, Rejection},
    config::BackendProtocol,
    policy::{
        RefusedBy,
        context::ExtraHeaders,
        tokens::{Metered, usage::Scanner},
    },
};

const X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// The client connection a request arrived on.
#[derive(Clone)]
pub struct Conn {
    pub client: SocketAddr,
    /// The client's address as the proxy headers give it.
    pub client_ip: ClientIp,
    /// "http" or "https".
    pub proto: &'static str,
    pub activity: Arc<Activity>,
    /// The certificate the client presented on the TLS connection.
    pub client_cert: Option<Arc<crate::client_cert::ClientCert>>,
}

/// Headers for the client's response kept out of its map: its
/// `X-Request-Id` (in place of any the backend sent) and those policies
/// added. The lean server writes them straight into the head; hyper gets
/// them inserted (`insert_into`).
pub struct More {
    trace: Trace,
    policies: ExtraHeaders,
}

impl More {
    pub fn insert_into(self, headers: &mut HeaderMap) {
        headers.insert(X_REQUEST_ID, self.trace.request_id());
        self.policies.append_to(headers);
    }
}

impl MoreHeaders for More {
    fn replaces(&self, name: &str) -> bool {
        name == X_REQUEST_ID.as_str()
    }

    fn each(&self, f: &mut dyn FnMut(&[u8], &[u8])) {
        f(
            X_REQUEST_ID.as_str().as_bytes(),
            self.trace.trace_id().as_bytes(),
        );
        for (name, value) in self.policies.iter() {
            f(name.as_str().as_bytes(), value.as_bytes());
        }
    }
}

/// Answers one request; never fails, errors become JSON responses. The
/// body is hyper's stream, or the lean server's bytes read in advance.
/// The response goes out with `More` headers.
pub async fn handle<B>(
    shared: &SharedGateway,
    metrics: &Arc<Metrics>,
    conn: &Conn,
    req: Request<B>,
) -> (Response<Observed>, More)
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let gw = super::gateway::current(shared);
    let in_flight = conn.activity.begin();
    let mut trace = Trace::continue_or_start(req.headers());
    let otel = metrics.otel();
    let sampled = otel.is_some_and(|o| o.sampled(trace.trace_bytes(), trace.parent()));
    if otel.is_some() {
        trace.decide(sampled);
    }
    let mut record = Record {
        started: Instant::now(),
        logged: (gw.access_log.enabled() || sampled).then(|| describe(&gw, conn, &req)),
        api: None,
        operation: None,
        product: None,
        subscription: None,
        status: 0,
        bytes_in: None,
        backend: None,
        trace,
        sampled,
        charges: Vec::new(),
    };
    let mut admitted = None;
    let mut policies = ExtraHeaders::default();
    let response = match proxy(
        &gw,
        metrics,
        conn,
        req,
        &trace,
        &mut record,
        &mut admitted,
        &mut policies,
    )
    .await
    {
        Ok(response) => response,
        Err(err) => {
            if let Some(logged) = &mut record.logged {
                logged.refused_by = match &err {
                    ProxyError::BodyTooLarge { .. } => Some(Rejection::BodyTooLarge.name()),
                    ProxyError::Refused(r) => Some(r.reason.name()),
                    ProxyError::NotAllowed { .. } => Some(Rejection::MethodNotAllowed.name()),
                    _ => None,
                };
            }
            match &err {
                ProxyError::BodyTooLarge { .. } => metrics.reject(Rejection::BodyTooLarge),
                ProxyError::Refused(r) => {
                    metrics.reject(r.reason);
                    tracing::debug!(client = %conn.client, reason = r.message, request_id = %trace.trace_id(), "request refused");
                }
                ProxyError::NotAllowed { .. } => metrics.reject(Rejection::MethodNotAllowed),
                _ => {}
            }
            if err.status().is_server_error() {
                tracing::warn!(error = ?err, request_id = %trace.trace_id(), "backend request failed");
            }
            match &admitted {
                Some(a) => a.on_error(err.response(), respond::full),
                None => err.response(),
            }
        }
    };
    record.status = response.status().as_u16();
    let mut response = response;
    // Outbound and on-error `trace` events, after inbound's.
    if let Some(traces) = response
        .extensions_mut()
        .remove::<crate::policy::trace::Traces>()
        && let Some(logged) = &mut record.logged
    {
        logged.traces.extend(traces.0);
    }
    if let Some(a) = &mut admitted {
        record.charges = std::mem::take(&mut a.charges);
        a.settle(response.status(), response.headers());
    }
    let more = More { trace, policies };
    if let Some(escalator) = &gw.escalation {
        escalator.observe(conn.client.ip(), record.status);
    }
    let (parts, body) = response.into_parts();
    let body = Observed::new(
        body,
        record,
        gw.access_log.clone(),
        metrics.recorder(),
        otel,
        in_flight,
    );
    (Response::from_parts(parts, body), more)
}

/// What the access log and the span say about a request beyond the
/// metrics (made only when one of them is on).
fn describe<B>(gw: &Gateway, conn: &Conn, req: &Request<B>) -> Box<Logged> {
    let headers = req.headers();
    Box::new(Logged {
        time: SystemTime::now(),
        client_ip: conn.client.ip(),
        method: req.method().clone(),
        uri: req.uri().clone(),
        query: req
            .uri()
            .query()
            .map(|q| super::redact::query(q, &gw.redact_query)),
        host: headers.get(header::HOST).cloned().or_else(|| {
            let authority = req.uri().authority()?;
            header::HeaderValue::from_str(authority.as_str()).ok()
        }),
        version: req.version(),
        scheme: conn.proto,
        user_agent: headers.get(header::USER_AGENT).cloned(),
        backend: None,
        backend_status: None,
        refused_by: None,
        traces: Vec::new(),
    })
}

#[expect(clippy::too_many_arguments, reason = "one request's whole context")]
async fn proxy<'g, B>(
    gw: &'g Gateway,
    metrics: &Metrics,
    conn: &Conn,
    mut req: Request<B>,
    trace: &Trace,
    record: &mut Record,
    admitted: &mut Option<Admitted<'g>>,
    policies: &mut ExtraHeaders,
) -> Result<Response<ProxyBody>, ProxyError>
where
    B: Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    // A refcounted copy: the path and query stay borrowed while the
    // request itself is rewritten.
    let uri = req.uri().clone();
    let checked =
        request_checks::before_routing(&mut req, &uri, gw.config.underscores_in_headers, |m| {
            gw.router.names_method(m)
        });
    let mut checked = match checked {
        Ok(checked) => checked,
        Err(r) => {
            let (host, path) = request_checks::hints(&req);
            return Err(refused(gw, r, host.as_deref(), &path));
        }
    };
    if checked.dropped > 0 {
        metrics.underscore_headers_dropped(checked.dropped);
    }
    // Routed, matched, given to policies and forwarded: the canonical path.
    let path: &str = &checked.path.path;
    let route = match gw.router.route(checked.host.as_deref(), req.method(), path) {
        Ok(route) => route,
        Err(_) if request_checks::unrouted(req.method()) => {
            let r = request_checks::METHOD_NOT_ALLOWED;
            return Err(refused(gw, r, checked.host.as_deref(), path));
        }
        Err(NoRoute::Api) => return Err(ProxyError::NoApi { path: path.into() }),
        Err(NoRoute::Operation { api }) => {
            request_checks::within_api(&checked, api).map_err(ProxyError::Refused)?;
            record.api = Some(api.name.clone());
            return Err(ProxyError::NoOperation {
                api: api.name.to_string(),
                method: req.method().to_string(),
                path: path.into(),
            });
        }
    };
    let api = route.api;
    record.api = Some(api.name.clone());
    record.operation = route.operation.map(|o| o.name.clone());
    request_checks::after_routing(&checked, &route, req.method())
        .map_err(|r| refused(gw, r, checked.host.as_deref(), path))?;
    let host = checked.host.take();

    let limit = gw.limits.max_body_bytes;
    if req.body().size_hint().lower() > limit {
        return Err(ProxyError::BodyTooLarge { limit });
    }
    let mut rest = Cow::Borrowed(route.rest);
    let mut query = Cow::Borrowed(query_suffix(&uri));
    // API management: subscription key and inbound policies.
    if let Some(catalog) = &gw.catalog {
        // Apart, so that a body policy may read the body while the
        // headers are changed.
        let (mut parts, mut body) = req.into_parts();
        let has_body = !body.is_end_stream();
        // A fn pointer: a fn item would carry its `Into` bound into the
        // request future, whose Send check cannot prove it.
        let convert: fn(B::Error) -> BoxError = into_box::<B::Error>;
        let mut stream = (&mut body).map_err(convert);
        let method = parts.method.clone();
        let incoming = gate::Incoming {
            api: &api.name,
            operation: record.operation.as_deref(),
            params: &route.params,
            client_ip: conn.client.ip(),
            client_cert: conn.client_cert.as_deref(),
            method: &method,
            headers: &mut parts.headers,
            path: route.rest,
            query: uri.query(),
            original_path: uri.path(),
            xdp: gw.xdp_state.as_ref(),
            body: has_body.then_some(&mut stream as crate::policy::body::BodyStream),
            body_limit: limit,
        };
        let who = (&mut record.product, &mut record.subscription);
        let admission = gate::admit(catalog, incoming, who).await;
        req = Request::from_parts(parts, body);
        match admission {
            Admission::Respond(answer, headers) => {
                *policies = headers;
                if let Some(logged) = &mut record.logged {
                    logged.refused_by = answer.extensions().get::<RefusedBy>().map(|r| r.0);
                }
                return Ok(respond::answer(answer));
            }
            Admission::Forward(mut a, headers) => {
                *policies = headers;
                if let Some(logged) = &mut record.logged {
                    logged.traces = std::mem::take(&mut a.traces);
                }
                rest = Cow::Owned(std::mem::take(&mut a.path));
                query = Cow::Owned(a.query.to_suffix());
                *admitted = Some(a);
            }
        }
    }
    let mut chosen = admitted.as_ref().and_then(|a| a.backend.clone());
    // `authentication-certificate`: the same backend with its certificate
    // (built with the gateway, `Gateway::build`).
    if let Some(id) = admitted.as_mut().and_then(|a| a.client_identity.take()) {
        let base = chosen.as_deref().unwrap_or(&api.backend);
        chosen = Some(Arc::new(crate::config::Backend {
            client_identity: Some(id),
            ..base.clone()
        }));
    }
    let b = chosen.as_deref().unwrap_or(&api.backend);
    if let Some(logged) = &mut record.logged {
        logged.backend = Some(b.authority.clone());
    }
    let mut target = String::with_capacity(b.base_path.len() + rest.len() + query.len() + 1);
    for part in [b.base_path.as_str(), &rest, &query] {
        target.push_str(part);
    }
    if !target.starts_with('/') {
        // The API's own root (`/status` → backend `http://b`).
        target.insert(0, '/');
    }
    if !valid_target(&target) {
        return Err(ProxyError::BadPath);
    }

    // Allowed here (`after_routing`) and after the policies ran.
    let upgrading = checked.upgrade == Asked::WebSocket && b.protocol == BackendProtocol::Http1;
    let on_client_upgrade = upgrading.then(|| hyper::upgrade::on(&mut req));
    // A body `set-body` or `find-and-replace` made goes in place of the
    // client's (which, if read, was read whole).
    let mut replaced = admitted.as_mut().and_then(|a| a.body.take());
    // `buffer-request-body`: the client's body read whole, so that a
    // retry can send it again.
    if replaced.is_none()
        && !req.body().is_end_stream()
        && !upgrading
        && admitted.as_ref().is_some_and(Admitted::buffers_body)
    {
        match crate::policy::body::read_limited(req.body_mut(), limit as usize).await {
            Ok(bytes) => replaced = Some(bytes),
            Err(crate::policy::body::Unread::TooLarge) => {
                return Err(ProxyError::BodyTooLarge { limit });
            }
            Err(crate::policy::body::Unread::Failed) => {
                return Err(ProxyError::BadBody {
                    why: "it broke off before its end".into(),
                });
            }
        }
    }
    let body_empty = match &replaced {
        Some(bytes) => bytes.is_empty(),
        None => req.body().is_end_stream(),
    };
    // A body in memory (made by a policy, or buffered) can be sent again.
    let replay = replaced.clone().filter(|b| !b.is_empty());
    let (parts, body) = req.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    if let Some(bytes) = &replaced {
        crate::policy::body::set_length(&mut headers, bytes.len());
    }
    if upgrading {
        upgrade::ask_backend(&mut headers);
    }
    let added = Added::new(conn.client_ip, conn.proto, host, trace);
    let method = parts.method.clone();
    let out = Outgoing {
        // `set-method`'s, or the client's.
        method: admitted
            .as_mut()
            .and_then(|a| a.method.take())
            .unwrap_or(parts.method),
        target,
        headers,
        added,
    };
    let body = if let Some(bytes) = replaced.filter(|b| !b.is_empty()) {
        drop(body);
        http_body_util::Full::new(bytes)
            .map_err(|never| -> BoxError { match never {} })
            .boxed_unsync()
    } else if body_empty {
        // Nothing to count or limit: no counter, no boxed wrapper.
        drop(body);
        empty_body()
    } else {
        let bytes_in = Arc::new(AtomicU64::new(0));
        record.bytes_in = Some(bytes_in.clone());
        Limited::new(Counted::new(body, bytes_in), limit as usize).boxed_unsync()
    };

    let sent = Instant::now();
    let wait = admitted
        .as_ref()
        .and_then(Admitted::timeout)
        .unwrap_or(b.response_timeout);
    // `retry` resends requests whose body is empty or in memory (a
    // stream cannot be replayed).
    let retry = admitted
        .as_ref()
        .and_then(Admitted::retry)
        .filter(|_| (body_empty || replay.is_some()) && !upgrading);
    // The exchange's state machine is large: boxed once, it is not copied
    // into each enclosing future as they are built (memcpy fell from 7.6%
    // to 5.9% of the proxy's user-space instructions).
    // A retry condition that failed: answered through on-error, as APIM
    // does with a failure in the backend section.
    // (A mutex: the request's future is Send; it is never contended.)
    let condition_failed = std::sync::Mutex::new(None);
    let result = match retry {
        None => {
            let send = Box::pin(gw.backends.send(b, out, body, upgrading, wait));
            deadline::until(sent + wait, send).await
        }
        Some(retry) => {
            let attempt = || {
                let body = match &replay {
                    Some(bytes) => http_body_util::Full::new(bytes.clone())
                        .map_err(|never| -> BoxError { match never {} })
                        .boxed_unsync(),
                    None => empty_body(),
                };
                let send = Box::pin(gw.backends.send(b, out.clone(), body, false, wait));
                deadline::within(wait, send)
            };
            let again = |r: &Result<Result<Answer, BackendError>, _>| match (r, admitted.as_ref()) {
                (Ok(Ok(answer)), Some(a)) => {
                    match a.retries(retry, answer.response.status(), answer.response.headers()) {
                        Ok(again) => again,
                        Err(failed) => {
                            *condition_failed.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(failed);
                            false
                        }
                    }
                }
                (Ok(Ok(answer)), None) => retry.retries_status(answer.response.status()),
                (Ok(Err(e)), _) => matches!(e, BackendError::Connect(_)),
                (Err(_), _) => false,
            };
            retry.run(attempt, again).await
        }
    };
    record.backend = Some(sent.elapsed());
    if let (Some(failed), Some(a)) = (
        condition_failed
            .into_inner()
            .unwrap_or_else(|p| p.into_inner()),
        admitted.as_ref(),
    ) {
        return Ok(a.on_error((*failed).map(respond::full), respond::full));
    }
    let api_name = || api.name.to_string();
    let answer = match result {
        Err(_) => return Err(ProxyError::BackendTimeout { api: api_name() }),
        Ok(Err(err)) => return Err(classify(err, api_name(), limit)),
        Ok(Ok(answer)) => answer,
    };
    if let Some(logged) = &mut record.logged {
        logged.backend_status = Some(answer.response.status().as_u16());
    }
    if answer.response.status() == StatusCode::SWITCHING_PROTOCOLS {
        // Tunnelled only when the client asked for WebSocket where it is
        // allowed, and the backend switched to just that.
        let switched = upgrade::backend_switched_to_websocket(answer.response.headers());
        let (Some(on_client), Some(on_backend), true) =
            (on_client_upgrade, answer.upgrade, switched)
        else {
            return Err(ProxyError::UnaskedUpgrade { api: api_name() });
        };
        tokio::spawn(upgrade::tunnel(on_client, on_backend));
        let (parts, _) = answer.response.into_parts();
        return Ok(Response::from_parts(parts, respond::full("")));
    }
    let (mut parts, body) = answer.response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let response = Response::from_parts(parts, body);
    Ok(match admitted {
        Some(a) if a.reads_response_body(content_type(response.headers())) => {
            // Read whole for outbound's body policies, within the limit.
            let (parts, body) = response.into_parts();
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let bytes = match crate::policy::body::read_limited(body, limit).await {
                Ok(bytes) => bytes,
                Err(e) => {
                    tracing::debug!(error = ?e, api = %api.name, "backend body not read for outbound policies");
                    return Err(ProxyError::BackendFailed { api: api_name() });
                }
            };
            a.count_tokens(content_type(&parts.headers), &bytes, policies);
            let response = a.finish_buffered(Response::from_parts(parts, bytes), respond::full);
            a.cache_store(&method, response, |tee| tee.boxed())
        }
        Some(a) => {
            let response = a.finish(response, respond::full);
            // The answer's tokens are read as it streams to the client.
            let response = match a.take_meter() {
                Some(meter) => {
                    let scanner = Scanner::for_type(content_type(response.headers()));
                    response.map(|b| Metered::new(b, meter, scanner).boxed())
                }
                None => response,
            };
            a.cache_store(&method, response, |tee| tee.boxed())
        }
        None => response,
    })
}

fn content_type(headers: &hyper::HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// The error answering a refusal; a 405 lists, in `Allow`, the methods
/// the path's operations take.
fn refused(gw: &Gateway, r: Refusal, host: Option<&str>, path: &str) -> ProxyError {
    if r.reason == Rejection::MethodNotAllowed {
        ProxyError::NotAllowed {
            allow: gw.router.allowed(host, path),
        }
    } else {
        ProxyError::Refused(r)
    }
}

/// A request target safe to write on the wire: visible ASCII only (the
/// path may come from a `rewrite-uri` template).
fn valid_target(target: &str) -> bool {
    target.bytes().all(|b| b.is_ascii_graphic())
}

/// A body error as the proxy's boxed error.
fn into_box<E: Into<BoxError>>(e: E) -> BoxError {
    e.into()
}

fn empty_body() -> super::RequestBody {
    http_body_util::Empty::<bytes::Bytes>::new()
        .map_err(|never| -> Box<dyn std::error::Error + Send + Sync> { match never {} })
        .boxed_unsync()
}

/// `?query` of `uri`, or "".
fn query_suffix(uri: &Uri) -> &str {
    let pq = uri.path_and_query().map_or("", |pq| pq.as_str());
    pq.find('?').map_or("", |i| &pq[i..])
}

fn classify(err: BackendError, api: String, limit: u64) -> ProxyError {
    match err {
        BackendError::BodyTooLarge => ProxyError::BodyTooLarge { limit },
        BackendError::BadRequestBody(why) => ProxyError::BadBody {
            why: why.to_string(),
        },
        BackendError::Connect(e) => {
            tracing::debug!(error = %e, %api, "backend connect failed");
            ProxyError::BackendConnect { api }
        }
        BackendError::Failed(e) => {
            tracing::debug!(error = %e, %api, "backend exchange failed");
            ProxyError::BackendFailed { api }
        }
        BackendError::Unavailable { retry_after_secs } => ProxyError::BackendUnavailable {
            api,
            retry_after_secs,
        },
    }
}
