//! The composed policies of one (product, API, operation), run section by
//! section. Each step returns an explicit `Flow`.
//!
//! `choose` in the inbound section is decided as the section runs; in the
//! later sections it is decided on the request as inbound left it
//! (`for_request`), so those sections keep a plain list of policies.

use std::{borrow::Cow, sync::Arc, time::Duration};

use bytes::Bytes;
use hyper::Response;

use super::{
    Answer, Policy, ScopePolicies, Section, compose,
    concurrency::LimitConcurrency,
    context::Ctx,
    expr::{Facts, Failed, Later, Snapshot},
};
use edgegw_policy_expr::Variables;
use gateway_model::policy::set_method::{self, SetMethodSpec};

/// Whether the request goes on, or is answered here.
pub enum Flow {
    Continue,
    Respond(Answer),
}

#[derive(Debug, Default, Clone)]
pub struct Pipeline {
    inbound: Vec<Arc<Policy>>,
    backend: Vec<Arc<Policy>>,
    outbound: Vec<Arc<Policy>>,
    on_error: Vec<Arc<Policy>>,
    /// Whether backend, outbound or on-error hold a `choose`.
    conditional: bool,
    /// Whether backend, outbound or on-error hold a policy expression
    /// (then requests keep a `Snapshot` for them).
    late_expressions: bool,
    /// Whether outbound or on-error reads the response body
    /// (`set-body` from it, `find-and-replace`): then it is buffered.
    reads_response_body: bool,
}

impl Pipeline {
    /// Composes the scopes, outermost first.
    pub fn new(scopes: &[&ScopePolicies]) -> Pipeline {
        let mut pipeline = Pipeline {
            inbound: compose(scopes, Section::Inbound),
            backend: compose(scopes, Section::Backend),
            outbound: compose(scopes, Section::Outbound),
            on_error: compose(scopes, Section::OnError),
            conditional: false,
            late_expressions: false,
            reads_response_body: false,
        };
        let later = [&pipeline.backend, &pipeline.outbound, &pipeline.on_error];
        pipeline.conditional = later
            .iter()
            .any(|s| s.iter().any(|p| matches!(**p, Policy::Choose(_))));
        pipeline.late_expressions = later.iter().any(|s| s.iter().any(|p| p.uses_expressions()));
        pipeline.reads_response_body = [&pipeline.outbound, &pipeline.on_error]
            .iter()
            .any(|s| s.iter().any(|p| super::body::reads_response(p)));
        pipeline
    }

    /// The pipeline whose backend, outbound and on-error sections hold the
    /// `choose` branches this request takes; itself when there is none.
    /// Borrowed, not counted: a shared count taken per request would move
    /// between the worker threads' caches.
    pub fn for_request(&self, ctx: &Ctx) -> Cow<'_, Pipeline> {
        if !self.conditional {
            return Cow::Borrowed(self);
        }
        Cow::Owned(Pipeline {
            inbound: Vec::new(),
            backend: decide(&self.backend, ctx),
            outbound: decide(&self.outbound, ctx),
            on_error: decide(&self.on_error, ctx),
            conditional: false,
            late_expressions: self.late_expressions,
            reads_response_body: self.reads_response_body,
        })
    }

    /// The request as inbound left it, for the expressions of the later
    /// sections and the increment conditions of the limits that admitted
    /// it; `None` (nothing copied) when there are none.
    /// Boxed: requests without one carry a pointer's worth.
    pub fn snapshot(&self, ctx: &Ctx) -> Option<Box<Snapshot>> {
        (self.late_expressions || !ctx.deferred.is_empty()).then(|| Box::new(Snapshot::of(ctx)))
    }

    /// No policies.
    pub const EMPTY: Pipeline = Pipeline {
        inbound: Vec::new(),
        backend: Vec::new(),
        outbound: Vec::new(),
        on_error: Vec::new(),
        conditional: false,
        late_expressions: false,
        reads_response_body: false,
    };

    pub async fn inbound(&self, ctx: &mut Ctx<'_>) -> Flow {
        // A `choose` branch runs in place: the rest of the enclosing list
        // waits on `outer` (which stays empty, unallocated, without choose).
        let mut current = self.inbound.iter();
        let mut outer = Vec::new();
        loop {
            let Some(policy) = current.next() else {
                match outer.pop() {
                    Some(rest) => {
                        current = rest;
                        continue;
                    }
                    None => break,
                }
            };
            let answer = match &**policy {
                Policy::Choose(c) => match c.pick(ctx) {
                    Ok(branch) => {
                        outer.push(std::mem::replace(&mut current, branch.iter()));
                        None
                    }
                    Err(failed) => Some(*failed),
                },
                // Boxed, as validate-jwt: a cluster limit may wait on Redis.
                Policy::Limit(l) if l.is_cluster() => Box::pin(l.check_cluster(ctx)).await,
                Policy::Limit(l) => l.check(ctx),
                Policy::IpFilter(f) => f.check(ctx.client_ip, ctx.xdp),
                Policy::CheckHeader(c) => c.check(ctx),
                // Boxed: its state (key fetching, over 1.5 KiB) would
                // otherwise be part of, and copied with, every request's
                // future, JWT or not.
                Policy::ValidateJwt(j) => Box::pin(j.check(ctx)).await,
                Policy::ValidateClientCertificate(v) => v.check(ctx.client_cert),
                Policy::LimitConcurrency(l) => match l.acquire() {
                    Some(slot) => {
                        ctx.slots.push(slot);
                        None
                    }
                    None => Some(LimitConcurrency::refusal()),
                },
                Policy::SetBackend(b) => {
                    ctx.backend = Some(b.clone());
                    None
                }
                Policy::AuthenticationCertificate(id) => {
                    ctx.client_identity = Some(id.clone());
                    None
                }
                Policy::Cors(c) => c.apply(ctx),
                Policy::SetHeader(h) => h.run(ctx),
                Policy::SetQuery(q) => q.run(ctx),
                Policy::RewriteUri(r) => r.run(ctx),
                // Boxed: making the body may wait on the client's.
                Policy::Return(r) => Some(Box::pin(r.run(ctx)).await),
                Policy::SetVariable(v) => match v.value(&Facts::of(ctx), None) {
                    Ok(value) => {
                        ctx.variables.insert(v.name().into(), value);
                        None
                    }
                    Err(failed) => Some(*failed),
                },
                // Boxed only when it waits on Redis.
                Policy::CacheLookup(c) if c.is_external() => Box::pin(c.lookup(ctx)).await,
                Policy::CacheLookup(c) => match c.lookup_memory(ctx) {
                    Ok(answer) => answer,
                    // Another request's miss of the key is on its way.
                    Err(wait) => Box::pin(c.after(ctx, wait)).await,
                },
                Policy::CacheLookupValue(v) => Box::pin(v.apply(ctx)).await,
                Policy::CacheStoreValue(v) => Box::pin(v.apply(ctx)).await,
                Policy::CacheRemoveValue(v) => Box::pin(v.apply(ctx)).await,
                // Boxed: it may wait on the token endpoint.
                Policy::AuthenticationManagedIdentity(m) => Box::pin(m.apply(ctx)).await,
                Policy::SendRequest(s) => Box::pin(s.run(ctx)).await,
                // Boxed: counting the prompt reads the client's body.
                Policy::TokenLimit(t) => Box::pin(t.check(ctx)).await,
                Policy::EmitTokenMetric(e) => e.apply(ctx),
                Policy::SetMethod(m) => set_method(m, ctx),
                Policy::AuthenticationBasic(header) => {
                    ctx.headers
                        .insert(hyper::header::AUTHORIZATION, header.clone());
                    None
                }
                // Boxed: reading a body waits on the client.
                Policy::SetBody(b) => Box::pin(super::body::set_request(b, ctx)).await,
                Policy::FindAndReplace(f) => Box::pin(super::body::replace_request(f, ctx)).await,
                Policy::Trace(t) => match super::trace::event(t, &Facts::of(ctx), None) {
                    Ok(event) => {
                        ctx.traces.push(event);
                        None
                    }
                    Err(failed) => Some(*failed),
                },
                Policy::SetStatus(_)
                | Policy::ForwardRequest(_)
                | Policy::Retry(_)
                | Policy::CacheStore(_) => None,
            };
            if let Some(mut response) = answer {
                if response.status().as_u16() >= 400 {
                    response
                        .extensions_mut()
                        .insert(super::RefusedBy(policy.name()));
                }
                return Flow::Respond(response);
            }
        }
        Flow::Continue
    }

    /// Whether outbound or on-error need the response body in memory.
    pub fn reads_response_body(&self) -> bool {
        self.reads_response_body
    }

    /// The backend response timeout set by `forward-request`, if any.
    pub fn forward_timeout(&self) -> Option<Duration> {
        self.backend.iter().rev().find_map(|p| match &**p {
            Policy::ForwardRequest(f) => Some(f.timeout),
            _ => None,
        })
    }

    /// Whether `forward-request` asks for the client's body in memory
    /// (so a retry can send it again).
    pub fn buffers_request_body(&self) -> bool {
        self.backend.iter().rev().any(|p| match &**p {
            Policy::ForwardRequest(f) => f.buffer_request_body,
            _ => false,
        })
    }

    /// The `retry` policy of the backend section, if any.
    pub fn retry(&self) -> Option<&super::Retry> {
        self.backend.iter().rev().find_map(|p| match &**p {
            Policy::Retry(r) => Some(r),
            _ => None,
        })
    }

    /// The `cache-store` policy of the outbound section, if any.
    pub fn cache_store(&self) -> Option<&super::cache::CacheStore> {
        self.outbound.iter().rev().find_map(|p| match &**p {
            Policy::CacheStore(c) => Some(c),
            _ => None,
        })
    }

    /// Runs the outbound section on a backend response; `body` makes the
    /// body of a response that `return-response` puts in its place;
    /// `snapshot` is what its expressions see of the request.
    pub fn outbound<B>(
        &self,
        response: Response<B>,
        body: impl FnOnce(Bytes) -> B,
        snapshot: Option<&Snapshot>,
    ) -> Response<B> {
        run_response(
            &self.outbound,
            Some(&self.on_error),
            response,
            body,
            snapshot,
            None,
        )
    }

    /// `outbound` on a response whose body was read into memory (when
    /// `reads_response_body`).
    pub fn outbound_buffered<B>(
        &self,
        response: Response<Bytes>,
        body: impl FnOnce(Bytes) -> B,
        snapshot: Option<&Snapshot>,
    ) -> Response<B> {
        let (parts, bytes) = response.into_parts();
        let (parts, returned) = run_parts(
            &self.outbound,
            Some(&self.on_error),
            parts,
            snapshot,
            Some(bytes),
        );
        Response::from_parts(parts, body(returned.unwrap_or_default()))
    }

    /// Runs the on-error section on an error the gateway answers (its
    /// expressions see the failure as `context.LastError`).
    pub fn on_error<B>(
        &self,
        response: Response<B>,
        body: impl FnOnce(Bytes) -> B,
        snapshot: Option<&Snapshot>,
    ) -> Response<B> {
        run_response(&self.on_error, None, response, body, snapshot, None)
    }

    /// Backends `set-backend-service` may switch to (their clients are
    /// built with the gateway).
    pub fn backends(&self) -> Vec<&crate::config::Backend> {
        let mut out = Vec::new();
        set_backends(&self.inbound, &mut out);
        out
    }

    /// Client certificates `authentication-certificate` may present
    /// (backend clients with them are built with the gateway).
    pub fn client_identities(&self) -> Vec<&crate::config::ClientIdentity> {
        fn walk<'a>(policies: &'a [Arc<Policy>], out: &mut Vec<&'a crate::config::ClientIdentity>) {
            for policy in policies {
                match &**policy {
                    Policy::AuthenticationCertificate(id) => out.push(id),
                    Policy::Choose(c) => c.branches().for_each(|b| walk(b, out)),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.inbound, &mut out);
        out
    }

    pub fn is_empty(&self) -> bool {
        self.inbound.is_empty()
            && self.backend.is_empty()
            && self.outbound.is_empty()
            && self.on_error.is_empty()
    }
}

fn set_backends<'a>(policies: &'a [Arc<Policy>], out: &mut Vec<&'a crate::config::Backend>) {
    for policy in policies {
        match &**policy {
            Policy::SetBackend(b) => out.push(b),
            Policy::Choose(c) => c.branches().for_each(|b| set_backends(b, out)),
            _ => {}
        }
    }
}

/// `set-method`: the method the backend gets; an expression's value is
/// checked as a literal is when loaded.
fn set_method(spec: &SetMethodSpec, ctx: &mut Ctx) -> Option<Answer> {
    match method_of(spec, ctx, "set-method") {
        Ok(m) => {
            ctx.set_method = Some(m);
            None
        }
        Err(failed) => Some(*failed),
    }
}

/// The method a `set-method` setting gives for this request (`policy`'s,
/// for its failure): a literal, or an expression's text checked as one.
pub(super) fn method_of(
    spec: &SetMethodSpec,
    ctx: &Ctx,
    policy: &'static str,
) -> Result<hyper::Method, Box<Answer>> {
    match spec {
        SetMethodSpec::Literal(m) => Ok(m.clone()),
        SetMethodSpec::Expr(e) => super::expr::text(e, ctx)
            .and_then(|t| set_method::method(&t).map_err(|m| super::expr::message(e, &m)))
            .map_err(|err| Box::new(super::expr::failure(policy, e, &err))),
    }
}

/// The policies of a section with each `choose` replaced by the branch
/// `ctx` takes; a `choose` with policy expressions stays, decided when the
/// section runs (its conditions may read the response).
fn decide(policies: &[Arc<Policy>], ctx: &Ctx) -> Vec<Arc<Policy>> {
    let mut out = Vec::with_capacity(policies.len());
    for policy in policies {
        match &**policy {
            Policy::Choose(c) if !c.uses_expressions() => {
                // Native conditions never fail.
                out.extend(decide(c.pick(ctx).unwrap_or_default(), ctx))
            }
            _ => out.push(policy.clone()),
        }
    }
    out
}

/// Runs a later section's `policies` on a response; `on_error` is the
/// on-error section when they are outbound's: as in APIM, an outbound
/// policy that fails hands its error response to on-error, which sees
/// the failure as `context.LastError`. `policies` are on-error's own
/// when `on_error` is `None`.
fn run_response<B>(
    policies: &[Arc<Policy>],
    on_error: Option<&[Arc<Policy>]>,
    response: Response<B>,
    make_body: impl FnOnce(Bytes) -> B,
    snapshot: Option<&Snapshot>,
    buffered: Option<Bytes>,
) -> Response<B> {
    let (parts, body) = response.into_parts();
    let (parts, returned) = run_parts(policies, on_error, parts, snapshot, buffered);
    let body = match returned {
        Some(bytes) => make_body(bytes),
        None => body,
    };
    Response::from_parts(parts, body)
}

/// `run_response` on the response's head and, when it was read or
/// replaced, its body (`buffered` in, the body to send out); a changed
/// body's length is set in `Content-Length`.
fn run_parts(
    policies: &[Arc<Policy>],
    on_error: Option<&[Arc<Policy>]>,
    mut parts: hyper::http::response::Parts,
    snapshot: Option<&Snapshot>,
    buffered: Option<Bytes>,
) -> (hyper::http::response::Parts, Option<Bytes>) {
    // Copied from inbound's (nothing to copy when none were set).
    let mut variables = snapshot.map(|s| s.variables().clone()).unwrap_or_default();
    let mut returned = buffered;
    let mut traces = Vec::new();
    let failed = (on_error.is_none() && snapshot.is_some())
        .then(|| Failed::of(&parts.extensions, parts.status));
    let env = Env {
        snapshot,
        failed: failed.as_ref(),
    };
    let mut out = Out {
        returned: &mut returned,
        variables: &mut variables,
        traces: &mut traces,
        changed: false,
    };
    if let Err(answer) = run_on(policies, &mut parts, &mut out, &env) {
        let (p, b) = answer.into_parts();
        parts = p;
        *out.returned = Some(b);
        out.changed = false;
        if let Some(on_error) = on_error {
            let failed = snapshot.map(|_| Failed::of(&parts.extensions, parts.status));
            let env = Env {
                snapshot,
                failed: failed.as_ref(),
            };
            // A failure in on-error itself: its 500 stands.
            if let Err(answer) = run_on(on_error, &mut parts, &mut out, &env) {
                let (p, b) = answer.into_parts();
                parts = p;
                *out.returned = Some(b);
                out.changed = false;
            }
        }
    }
    if out.changed
        && let Some(b) = out.returned.as_ref()
    {
        super::body::set_length(&mut parts.headers, b.len());
    }
    if !traces.is_empty() {
        parts.extensions.insert(super::trace::Traces(traces));
    }
    (parts, returned)
}

/// What a later section's policies change besides the head.
struct Out<'a> {
    /// The body to send, when read or replaced.
    returned: &'a mut Option<Bytes>,
    variables: &'a mut Variables<'static>,
    traces: &'a mut Vec<super::trace::Event>,
    /// Whether `set-body` or `find-and-replace` changed `returned`.
    changed: bool,
}

/// What the later sections' expressions see besides the response: the
/// request as inbound left it, and in on-error the failure.
struct Env<'a> {
    snapshot: Option<&'a Snapshot>,
    failed: Option<&'a Failed>,
}

impl Env<'_> {
    /// Runs `with` on the facts (the variables as they are now) and the
    /// response as it is now; `None` when the pipeline keeps no snapshot.
    fn later<R>(
        &self,
        variables: &Variables<'static>,
        parts: &hyper::http::response::Parts,
        body: Option<&[u8]>,
        with: impl FnOnce(Option<(&Facts, Later)>) -> R,
    ) -> R {
        match self.snapshot {
            Some(s) => {
                let facts = s.facts_with(variables);
                with(Some((
                    &facts,
                    Later {
                        status: parts.status.as_u16(),
                        headers: &parts.headers,
                        last_error: self.failed,
                        body,
                    },
                )))
            }
            None => with(None),
        }
    }
}

/// Runs `policies` on a response's head; a failed expression's answer
/// as the error (it replaces the response; logged where it failed).
fn run_on(
    policies: &[Arc<Policy>],
    parts: &mut hyper::http::response::Parts,
    out: &mut Out,
    env: &Env,
) -> Result<(), Box<Answer>> {
    for policy in policies {
        let body = out.returned.as_deref();
        match &**policy {
            Policy::SetHeader(h) => {
                let value = env.later(out.variables, parts, body, |l| h.value_later(l))?;
                h.set(&mut parts.headers, value.as_ref());
            }
            Policy::SetStatus(s) => s.apply(parts),
            // A returned response replaces status, headers and body.
            Policy::Return(r) => {
                let answer = env.later(out.variables, parts, body, |l| match l {
                    Some((facts, later)) => r.made(facts, Some(later)),
                    None => r.made(&Snapshot::empty().facts(), None),
                })?;
                let (p, b) = answer.into_parts();
                *parts = p;
                *out.returned = Some(b);
                out.changed = false;
            }
            Policy::Choose(c) => {
                let branch = env.later(out.variables, parts, body, |l| c.pick_later(l))?;
                run_on(branch, parts, out, env)?;
            }
            Policy::SetVariable(v) => {
                let value = env.later(out.variables, parts, body, |l| v.value_later(l))?;
                out.variables.insert(v.name().into(), value);
            }
            Policy::SetBody(b) => {
                let new = env.later(out.variables, parts, body, |l| match l {
                    Some((facts, later)) => super::body::make(b, facts, Some(later)),
                    None => super::body::make(b, &Snapshot::empty().facts(), None),
                })?;
                *out.returned = Some(new);
                out.changed = true;
            }
            Policy::FindAndReplace(f) => {
                let current = out.returned.clone().unwrap_or_default();
                let new = env.later(out.variables, parts, Some(&current[..]), |l| match l {
                    Some((facts, later)) => super::body::replace(f, &current, facts, Some(later)),
                    None => super::body::replace(f, &current, &Snapshot::empty().facts(), None),
                })?;
                if let Some(new) = new {
                    *out.returned = Some(new);
                    out.changed = true;
                }
            }
            Policy::Trace(t) => {
                let event = env.later(out.variables, parts, body, |l| match l {
                    Some((facts, later)) => super::trace::event(t, facts, Some(later)),
                    None => super::trace::event(t, &Snapshot::empty().facts(), None),
                })?;
                out.traces.push(event);
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::scope::tests::scope;

    fn pipeline(text: &str) -> Arc<Pipeline> {
        Arc::new(Pipeline::new(&[&scope(text)]))
    }

    #[test]
    fn outbound_body_policies_change_the_body_and_its_length() {
        let p = pipeline(
            "outbound:\n  - find-and-replace: {from: a, to: bbb}\n  - trace: {source: s, message: m}\n",
        );
        assert!(p.reads_response_body());
        let mut response = Response::new(Bytes::from("a-a"));
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_LENGTH, 3.into());
        let out = p.outbound_buffered(response, |b| b, None);
        assert_eq!(out.body(), "bbb-bbb");
        assert_eq!(out.headers()[hyper::header::CONTENT_LENGTH], "7");
        let traces = out
            .extensions()
            .get::<super::super::trace::Traces>()
            .unwrap();
        assert_eq!(traces.0[0].message, "m");

        // A literal set-body needs no read; the body is replaced anyway.
        let p = pipeline("outbound:\n  - set-body: {value: new}\n");
        assert!(!p.reads_response_body());
        let out = p.outbound(Response::new(Bytes::from("old body")), |b| b, None);
        assert_eq!(out.body().as_ref(), b"new");
        assert_eq!(out.headers()[hyper::header::CONTENT_LENGTH], "3");
    }

    #[test]
    fn later_sections_keep_the_branch_the_request_takes() {
        let p = pipeline(
            r#"
inbound:
  - choose:
      - when: "'a' == 'b'"
        policies:
          - choose:
              - when: "'a' == 'a'"
                policies: [{set-backend-service: {base_url: "http://127.0.0.1:9/v2"}}]
outbound:
  - set-header: {name: x-a, value: "1"}
  - choose:
      - when: "{header:x-tier} == 'gold'"
        policies: [{set-status: {code: 203}}]
      - otherwise:
          - choose:
              - when: "{method} == 'GET'"
                policies: [{set-header: {name: x-b, value: "2"}}, {set-header: {name: x-c, value: "3"}}]
"#,
        );
        // Backends of every branch, nested ones too, get their clients.
        assert_eq!(p.backends().len(), 1);
        let method = hyper::Method::GET;
        let mut headers = hyper::HeaderMap::new();
        let chosen = p.for_request(&Ctx::test(&method, &mut headers));
        assert_eq!(chosen.outbound.len(), 3, "{:?}", chosen.outbound);
        headers.insert("x-tier", "gold".parse().unwrap());
        let chosen = p.for_request(&Ctx::test(&method, &mut headers));
        assert!(matches!(*chosen.outbound[1], Policy::SetStatus(_)));
        assert_eq!(chosen.outbound.len(), 2);

        // Without choose in the later sections: the same pipeline, no copy.
        let plain = pipeline("inbound: [{choose: [{when: \"'a' == 'a'\", policies: []}]}]");
        assert!(matches!(
            plain.for_request(&Ctx::test(&method, &mut headers)),
            Cow::Borrowed(p) if std::ptr::eq(p, &*plain)
        ));
    }
}
