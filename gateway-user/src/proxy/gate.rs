//! The front door of API management, run after routing: finds the
//! subscription from the key (header or query parameter, both stripped
//! before forwarding), checks it may call the API, picks the composed
//! pipeline for (product, API, operation) and runs the inbound section.
//!
//! 401: key missing, unknown, or not valid for this API; 403: subscription
//! suspended or expired. Answers the gateway gives with a status of 400 or
//! more (these, rate limits, filters) go through the on-error section.
//! Either way, the headers policies left for the client's response are
//! handed on with the outcome (`Admission`).

use std::{borrow::Cow, net::IpAddr, sync::Arc};

use bytes::Bytes;
use hyper::{HeaderMap, Method, Response, StatusCode, header};

use crate::{
    catalog::{Catalog, State},
    policy::{
        Answer, Charge, Deferred, Flow, Pipeline, RefusedBy, Retry, Slot, XdpState,
        body::{BodyStream, RequestBody},
        cache::{Pending, Tee},
        context::{Ctx, ExtraHeaders, Query},
        expr::{Facts, Later, Snapshot},
        refusal,
        trace::{Event, Traces},
    },
};

/// The request, as routing found it.
pub struct Incoming<'a> {
    pub api: &'a str,
    pub operation: Option<&'a str>,
    pub params: &'a [(String, String)],
    pub client_ip: IpAddr,
    /// The certificate the client presented on the TLS connection.
    pub client_cert: Option<&'a crate::client_cert::ClientCert>,
    pub method: &'a Method,
    pub headers: &'a mut HeaderMap,
    /// Path after the API prefix.
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The whole path as the client sent it (canonical), API prefix
    /// included: `context.Request.OriginalUrl`.
    pub original_path: &'a str,
    /// The XDP program's source state, when XDP is attached.
    pub xdp: Option<&'a XdpState>,
    /// The request body, read only if a body policy needs it (`None`:
    /// the request has none), and how much of it may be read.
    pub body: Option<BodyStream<'a>>,
    pub body_limit: u64,
}

/// A request that goes on to the backend, with the catalog's pipeline
/// borrowed for its lifetime.
pub struct Admitted<'c> {
    pipeline: Cow<'c, Pipeline>,
    /// Path after the backend's base path (taken by the proxy).
    pub path: String,
    pub query: Query,
    /// Set by `set-backend-service`.
    pub backend: Option<Arc<crate::config::Backend>>,
    /// Set by `authentication-certificate`.
    pub client_identity: Option<crate::config::ClientIdentity>,
    /// Bandwidth quotas to charge with the call's body bytes when it ends.
    pub charges: Vec<Charge>,
    /// Set by `set-method`.
    pub method: Option<Method>,
    /// The body `set-body` or `find-and-replace` made (or read): sent in
    /// place of the client's stream.
    pub body: Option<Bytes>,
    /// What inbound `trace` policies wrote.
    pub traces: Vec<crate::policy::trace::Event>,
    /// Calls counted when the response is known (`settle`).
    deferred: Vec<Deferred>,
    /// A `cache-lookup` miss: the response may be stored.
    cache: Option<Box<Pending>>,
    /// The call's language-model tokens, counted from the answer.
    tokens: Option<Box<crate::policy::tokens::Meter>>,
    /// The request as inbound left it, for the later sections' policy
    /// expressions (`None` when they have none).
    snapshot: Option<Box<Snapshot>>,
    _slots: Vec<Slot>,
}

/// Either way, with the headers the inbound section left for the client's
/// response: added after the outbound or on-error section ran (policies
/// there do not see them), by whoever writes the response.
#[expect(
    clippy::large_enum_variant,
    reason = "made once per request and taken apart at once; boxing would allocate per request"
)]
pub enum Admission<'c> {
    Forward(Admitted<'c>, ExtraHeaders),
    Respond(Answer, ExtraHeaders),
}

const MISSING: &str = "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.";
const INVALID: &str = "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.";

/// `who` receives the product and subscription of the call (for the
/// analytics), whatever the outcome.
pub async fn admit<'c>(
    catalog: &'c Catalog,
    req: Incoming<'_>,
    who: (&mut Option<Arc<str>>, &mut Option<Arc<str>>),
) -> Admission<'c> {
    let mut query = Query::parse(req.query);
    let (mut subscription, mut product) = (None, None);
    let mut refuse = None;
    let managed = catalog.api(req.api);
    if let Some(api) = managed {
        // Taken out of the request (never forwarded) and read in place.
        let header = req.headers.remove(&api.key_header);
        let key = match header.as_ref().and_then(|v| v.to_str().ok()) {
            Some(k) => Some(Cow::Borrowed(k)),
            None => query.get(&api.key_query).map(Cow::Owned),
        };
        query.remove(&api.key_query);
        match key.filter(|k| !k.is_empty()) {
            Some(key) => {
                // Read out of the set in force and let go at once: a
                // control plane's change may swap the set meanwhile.
                let found = catalog.subscriptions().find(&key).and_then(|s| {
                    let via = catalog.grants(s, req.api)?;
                    Some((s.id.clone(), s.state, via))
                });
                match found {
                    None => refuse = Some((StatusCode::UNAUTHORIZED, INVALID.to_string())),
                    Some((id, state, via)) => {
                        if state != State::Active {
                            let state = if state == State::Suspended {
                                "suspended"
                            } else {
                                "expired"
                            };
                            refuse = Some((
                                StatusCode::FORBIDDEN,
                                format!("Access denied: the subscription is {state}."),
                            ));
                        }
                        subscription = Some(id);
                        product = via;
                    }
                }
            }
            None if api.subscription_required => {
                refuse = Some((StatusCode::UNAUTHORIZED, MISSING.to_string()))
            }
            None => product = api.open_product,
        }
    }
    *who.0 = product.map(|p| Arc::from(catalog.products()[p].name.as_str()));
    *who.1 = subscription.clone();
    let pipeline = match managed {
        Some(api) => api.pipeline(req.operation, product),
        None => catalog.unmanaged(),
    };
    let mut ctx = Ctx {
        client_ip: req.client_ip,
        client_cert: req.client_cert,
        method: req.method,
        headers: req.headers,
        path: req.path.to_string(),
        original: (req.original_path, req.query),
        query,
        api: req.api,
        operation: req.operation,
        params: req.params,
        subscription: subscription.as_deref(),
        product: product.map(|p| catalog.products()[p].name.as_str()),
        response_headers: ExtraHeaders::default(),
        jwt_claims: None,
        backend: None,
        client_identity: None,
        slots: Vec::new(),
        charges: Vec::new(),
        deferred: Vec::new(),
        xdp: req.xdp,
        cache: None,
        variables: Default::default(),
        set_method: None,
        body: RequestBody::new(req.body.map(|b| b as BodyStream), req.body_limit),
        traces: Vec::new(),
        tokens: None,
    };
    // Browsers send CORS preflights without keys: the pipeline may answer
    // them (the cors policy) before the key is required.
    let preflight = *req.method == Method::OPTIONS
        && ctx
            .headers
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if let Some((status, message)) = refuse.take() {
        if preflight
            && status == StatusCode::UNAUTHORIZED
            && let Flow::Respond(r) = pipeline.inbound(&mut ctx).await
        {
            return Admission::Respond(with_traces(r, ctx.traces), ctx.response_headers);
        }
        let mut r = refusal(status, &message);
        r.extensions_mut().insert(RefusedBy("subscription-key"));
        let pipeline = pipeline.for_request(&ctx);
        let mut r = pipeline.on_error(r, |b| b, pipeline.snapshot(&ctx).as_deref());
        r.extensions_mut().insert(RefusedBy("subscription-key"));
        return Admission::Respond(with_traces(r, ctx.traces), ctx.response_headers);
    }
    let flow = pipeline.inbound(&mut ctx).await;
    // `choose` of the later sections is decided on the request as it is now.
    let pipeline = pipeline.for_request(&ctx);
    let snapshot = pipeline.snapshot(&ctx);
    match flow {
        Flow::Continue => Admission::Forward(
            Admitted {
                pipeline,
                path: ctx.path,
                query: ctx.query,
                backend: ctx.backend,
                client_identity: ctx.client_identity,
                charges: ctx.charges,
                method: ctx.set_method,
                body: ctx.body.bytes,
                traces: ctx.traces,
                deferred: ctx.deferred,
                cache: ctx.cache,
                tokens: ctx.tokens,
                snapshot,
                _slots: ctx.slots,
            },
            ctx.response_headers,
        ),
        Flow::Respond(r) => {
            // The refusing policy's tag outlives what on-error makes.
            let by = r.extensions().get::<RefusedBy>().copied();
            let mut r = if r.status().as_u16() >= 400 {
                pipeline.on_error(r, |b| b, snapshot.as_deref())
            } else {
                r
            };
            if let Some(by) = by {
                r.extensions_mut().insert(by);
            }
            let later = Later {
                status: r.status().as_u16(),
                headers: r.headers(),
                last_error: None,
                body: None,
            };
            for d in &ctx.deferred {
                d.settle(&Facts::of(&ctx), later);
            }
            Admission::Respond(with_traces(r, ctx.traces), ctx.response_headers)
        }
    }
}

/// The answer with inbound's `trace` events before those the on-error
/// section left on it.
fn with_traces(mut r: Answer, inbound: Vec<Event>) -> Answer {
    if inbound.is_empty() {
        return r;
    }
    let later = r.extensions_mut().remove::<Traces>().unwrap_or_default();
    let mut all = inbound;
    all.extend(later.0);
    r.extensions_mut().insert(Traces(all));
    r
}

impl Admitted<'_> {
    /// Counts the calls of limits with an increment condition that holds
    /// over the response the client gets.
    pub fn settle(&mut self, status: StatusCode, headers: &HeaderMap) {
        let deferred = std::mem::take(&mut self.deferred);
        let Some(snapshot) = self.snapshot.as_deref() else {
            return;
        };
        let facts = snapshot.facts();
        let later = Later {
            status: status.as_u16(),
            headers,
            last_error: None,
            body: None,
        };
        for d in &deferred {
            d.settle(&facts, later);
        }
    }

    /// `finish` on a response whose body was read into memory (when
    /// `reads_response_body`).
    pub fn finish_buffered<B>(
        &self,
        response: Response<Bytes>,
        body: impl FnOnce(Bytes) -> B,
    ) -> Response<B> {
        self.pipeline
            .outbound_buffered(response, body, self.snapshot.as_deref())
    }

    /// Whether outbound needs the response body in memory: for its body
    /// policies, or for the tokens of an answer that a `tokens-consumed`
    /// header or variable reports.
    pub fn reads_response_body(&self, content_type: Option<&str>) -> bool {
        self.pipeline.reads_response_body()
            || self
                .tokens
                .as_ref()
                .is_some_and(|m| m.needs_answer_read(content_type))
    }

    /// Counts the tokens of an answer read whole (`reads_response_body`),
    /// before outbound: its policies see the `tokens-consumed` variable,
    /// and the header goes into `extra`.
    pub fn count_tokens(
        &mut self,
        content_type: Option<&str>,
        body: &[u8],
        extra: &mut ExtraHeaders,
    ) {
        let Some(meter) = self.tokens.take() else {
            return;
        };
        let (consumed, header, variable) = meter.settle_buffered(content_type, body);
        if let Some(h) = header {
            extra.append(h, hyper::header::HeaderValue::from(consumed));
        }
        if let (Some(v), Some(snapshot)) = (variable, self.snapshot.as_deref_mut()) {
            snapshot.set_variable(
                v,
                edgegw_policy_expr::Value::Int(i32::try_from(consumed).unwrap_or(i32::MAX)),
            );
        }
    }

    /// The rest of the call's token accounting, done as its answer streams
    /// (`Metered`).
    pub fn take_meter(&mut self) -> Option<Box<crate::policy::tokens::Meter>> {
        self.tokens.take()
    }

    /// The backend's response, through the outbound section (`body` makes
    /// the body of a response `return-response` puts in its place).
    pub fn finish<B>(&self, response: Response<B>, body: impl FnOnce(Bytes) -> B) -> Response<B> {
        self.pipeline
            .outbound(response, body, self.snapshot.as_deref())
    }

    /// The response, its body copied into the cache as it streams (the
    /// copying body made into a `B` by `wrap`) when a `cache-lookup`
    /// missed and `cache-store` may store it.
    pub fn cache_store<B>(
        &mut self,
        method: &Method,
        response: Response<B>,
        wrap: impl FnOnce(Tee<B>) -> B,
    ) -> Response<B>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
    {
        match (self.cache.take(), self.pipeline.cache_store()) {
            (Some(pending), Some(store)) => store.store(pending, method, response).map(wrap),
            _ => response,
        }
    }

    /// An error the gateway answers (backend down, too slow), through the
    /// on-error section.
    pub fn on_error<B>(&self, response: Response<B>, body: impl FnOnce(Bytes) -> B) -> Response<B> {
        self.pipeline
            .on_error(response, body, self.snapshot.as_deref())
    }

    /// The `retry` policy of the backend section, if any.
    pub fn retry(&self) -> Option<&Retry> {
        self.pipeline.retry()
    }

    /// Whether `retry` sends the request again after this answer of the
    /// backend (its condition sees the request as inbound left it).
    /// A condition that fails is the error to answer (through on-error).
    pub fn retries(
        &self,
        retry: &Retry,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<bool, Box<Answer>> {
        let facts = self.snapshot.as_deref().map(Snapshot::facts);
        retry.retries(status, headers, facts.as_ref())
    }

    /// Whether the body is read into memory before it is sent, so that
    /// `retry` can send it again (`forward-request buffer_request_body`).
    pub fn buffers_body(&self) -> bool {
        self.pipeline.retry().is_some() && self.pipeline.buffers_request_body()
    }

    /// The backend timeout set by `forward-request`, if any.
    pub fn timeout(&self) -> Option<std::time::Duration> {
        self.pipeline.forward_timeout()
    }
}
