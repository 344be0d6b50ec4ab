//! The composed policies of one (product, API, operation), run section by
//! section. Each step returns an explicit `Flow`.

use std::{sync::Arc, time::Duration};

use hyper::Response;

use super::{Policy, ScopePolicies, Section, compose, concurrency::LimitConcurrency, context::Ctx};
use crate::proxy::ProxyBody;

/// Whether the request goes on, or is answered here.
pub enum Flow {
    Continue,
    Respond(Response<ProxyBody>),
}

#[derive(Debug, Default)]
pub struct Pipeline {
    inbound: Vec<Arc<Policy>>,
    backend: Vec<Arc<Policy>>,
    outbound: Vec<Arc<Policy>>,
    on_error: Vec<Arc<Policy>>,
}

impl Pipeline {
    /// Composes the scopes, outermost first.
    pub fn new(scopes: &[&ScopePolicies]) -> Pipeline {
        Pipeline {
            inbound: compose(scopes, Section::Inbound),
            backend: compose(scopes, Section::Backend),
            outbound: compose(scopes, Section::Outbound),
            on_error: compose(scopes, Section::OnError),
        }
    }

    pub async fn inbound(&self, ctx: &mut Ctx<'_>) -> Flow {
        for policy in &self.inbound {
            let answer = match &**policy {
                Policy::Limit(l) => l.check(ctx),
                Policy::IpFilter(f) => f.check(ctx.client_ip, ctx.xdp),
                Policy::CheckHeader(c) => c.check(ctx),
                Policy::ValidateJwt(j) => j.check(ctx).await,
                Policy::LimitConcurrency(l) => match l.acquire() {
                    Some(slot) => {
                        ctx.slots.push(slot);
                        None
                    }
                    None => Some(LimitConcurrency::refusal()),
                },
                Policy::SetBackend(b) => {
                    ctx.backend = Some(b.backend.clone());
                    None
                }
                Policy::Cors(c) => c.apply(ctx),
                Policy::SetHeader(h) => {
                    h.apply(ctx.headers);
                    None
                }
                Policy::SetQuery(q) => {
                    q.apply(&mut ctx.query);
                    None
                }
                Policy::RewriteUri(r) => {
                    r.apply(ctx);
                    None
                }
                Policy::Return(r) => Some(r.response()),
                Policy::SetStatus(_) | Policy::ForwardRequest(_) | Policy::Retry(_) => None,
            };
            if let Some(response) = answer {
                return Flow::Respond(response);
            }
        }
        Flow::Continue
    }

    /// The backend response timeout set by `forward-request`, if any.
    pub fn forward_timeout(&self) -> Option<Duration> {
        self.backend.iter().rev().find_map(|p| match &**p {
            Policy::ForwardRequest(f) => Some(f.timeout),
            _ => None,
        })
    }

    /// The `retry` policy of the backend section, if any.
    pub fn retry(&self) -> Option<&super::Retry> {
        self.backend.iter().rev().find_map(|p| match &**p {
            Policy::Retry(r) => Some(r),
            _ => None,
        })
    }

    /// Runs the outbound section on a backend response.
    pub fn outbound(&self, response: Response<ProxyBody>) -> Response<ProxyBody> {
        run_response(&self.outbound, response)
    }

    /// Runs the on-error section on an error the gateway answers.
    pub fn on_error(&self, response: Response<ProxyBody>) -> Response<ProxyBody> {
        run_response(&self.on_error, response)
    }

    /// Backends `set-backend-service` may switch to (their clients are
    /// built with the gateway).
    pub fn backends(&self) -> impl Iterator<Item = &crate::config::Backend> {
        self.inbound.iter().filter_map(|p| match &**p {
            Policy::SetBackend(b) => Some(&*b.backend),
            _ => None,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.inbound.is_empty()
            && self.backend.is_empty()
            && self.outbound.is_empty()
            && self.on_error.is_empty()
    }
}

fn run_response(policies: &[Arc<Policy>], response: Response<ProxyBody>) -> Response<ProxyBody> {
    let (mut parts, mut body) = response.into_parts();
    for policy in policies {
        match &**policy {
            Policy::SetHeader(h) => h.apply(&mut parts.headers),
            Policy::SetStatus(s) => s.apply(&mut parts),
            // A returned response replaces status, headers and body.
            Policy::Return(r) => {
                let replaced = r.response();
                let (p, b) = replaced.into_parts();
                parts = p;
                body = b;
            }
            _ => {}
        }
    }
    Response::from_parts(parts, body)
}
