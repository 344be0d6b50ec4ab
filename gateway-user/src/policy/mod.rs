//! The policy pipeline of API management, at run time.
//!
//! Policies are declared per scope (global → product → API → operation)
//! and per section (inbound, backend, outbound, on-error); in a scope,
//! `base` marks where the enclosing scope's policies of the same section
//! run (`scope` composes them). Each policy's settings are validated into
//! a spec by the model (`gateway_model::policy`); here each policy is a
//! small type in its own file, built from its spec by `Policy::build`.

pub mod body;
pub mod cache;
mod check_header;
mod choose;
mod cluster_limit;
mod concurrency;
mod condition;
pub mod context;
mod cors;
pub mod counters;
pub mod expr;
mod fetch;
mod ip_filter;
pub(crate) mod jwt;
mod limits;
mod liquid;
mod managed_identity;
mod per_thread;
mod pipeline;
mod respond;
mod retry;
mod rewrite_uri;
mod scope;
mod send_request;
mod set_header;
mod set_query;
mod set_variable;
pub mod template;
pub mod tokens;
pub mod trace;
mod validate_client_certificate;
pub mod xdp_state;

pub use concurrency::Slot;
pub use gateway_model::policy::Section;
pub use limits::{Charge, Deferred};

use gateway_model::policy::{
    Placed, PolicySpec, forward_request::ForwardRequestSpec, set_backend::Target,
};
pub use pipeline::{Flow, Pipeline};
pub use respond::{Answer, RefusedBy, refusal};
pub use retry::Retry;
pub use scope::{ScopePolicies, compose};
pub use xdp_state::XdpState;

use crate::state_registry::Staging;

/// Every policy the gateway knows.
#[derive(Debug)]
pub enum Policy {
    Limit(limits::Limit),
    IpFilter(ip_filter::IpFilter),
    CheckHeader(check_header::CheckHeader),
    Cors(cors::Cors),
    SetHeader(set_header::SetHeader),
    SetQuery(set_query::SetQuery),
    RewriteUri(rewrite_uri::RewriteUri),
    /// `return-response` and `mock-response`.
    Return(respond::ReturnResponse),
    SetStatus(respond::SetStatus),
    /// Read by the forwarder: nothing to build.
    ForwardRequest(ForwardRequestSpec),
    ValidateJwt(Box<jwt::ValidateJwt>),
    ValidateClientCertificate(Box<validate_client_certificate::ValidateClientCertificate>),
    /// The client certificate backend requests present (data only).
    AuthenticationCertificate(crate::config::ClientIdentity),
    LimitConcurrency(concurrency::LimitConcurrency),
    /// Read by the router: nothing to build.
    SetBackend(std::sync::Arc<crate::config::Backend>),
    Retry(retry::Retry),
    /// `choose` / `when` / `otherwise`.
    Choose(Box<choose::Choose>),
    CacheLookup(cache::CacheLookup),
    CacheStore(cache::CacheStore),
    CacheLookupValue(cache::CacheLookupValue),
    CacheStoreValue(cache::CacheStoreValue),
    CacheRemoveValue(cache::CacheRemoveValue),
    SetVariable(set_variable::SetVariable),
    AuthenticationManagedIdentity(Box<managed_identity::ManagedIdentity>),
    /// Data only: the method, or the expression giving it.
    SetMethod(gateway_model::policy::set_method::SetMethodSpec),
    /// Data only (`body` runs it).
    SetBody(gateway_model::policy::set_body::SetBodySpec),
    /// Data only (`body` runs it).
    FindAndReplace(gateway_model::policy::find_and_replace::FindAndReplaceSpec),
    /// The `Authorization` header the backend request carries.
    AuthenticationBasic(hyper::header::HeaderValue),
    /// Data only (`trace` runs it).
    Trace(gateway_model::policy::trace::TraceSpec),
    SendRequest(Box<send_request::SendRequest>),
    TokenLimit(Box<tokens::TokenLimit>),
    EmitTokenMetric(Box<tokens::EmitTokenMetric>),
}

/// The token cache of the node's `[identity]` (one per identity, kept
/// across reloads); a node without one refuses the catalog (`lacks_identity`).
fn identity_tokens(
    placed: &Placed,
    staging: &mut Staging,
) -> Option<std::sync::Arc<managed_identity::Tokens>> {
    match staging.identity().cloned() {
        Some(identity) => Some(staging.take(
            crate::state_registry::Kind::Identity,
            format!("{identity:?}"),
            || managed_identity::Tokens::new(identity),
        )),
        None => {
            staging.lacks_identity(&placed.place);
            None
        }
    }
}

impl Policy {
    /// The policy's name as written in the catalog.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Limit(l) => l.name(),
            Policy::IpFilter(_) => "ip-filter",
            Policy::CheckHeader(_) => "check-header",
            Policy::Cors(_) => "cors",
            Policy::SetHeader(_) => "set-header",
            Policy::SetQuery(_) => "set-query-parameter",
            Policy::RewriteUri(_) => "rewrite-uri",
            Policy::Return(_) => "return-response",
            Policy::SetStatus(_) => "set-status",
            Policy::ForwardRequest(_) => "forward-request",
            Policy::ValidateJwt(_) => "validate-jwt",
            Policy::ValidateClientCertificate(_) => "validate-client-certificate",
            Policy::AuthenticationCertificate(_) => "authentication-certificate",
            Policy::LimitConcurrency(_) => "limit-concurrency",
            Policy::SetBackend(_) => "set-backend-service",
            Policy::Retry(_) => "retry",
            Policy::Choose(_) => "choose",
            Policy::CacheLookup(_) => "cache-lookup",
            Policy::CacheStore(_) => "cache-store",
            Policy::CacheLookupValue(_) => "cache-lookup-value",
            Policy::CacheStoreValue(_) => "cache-store-value",
            Policy::CacheRemoveValue(_) => "cache-remove-value",
            Policy::SetVariable(_) => "set-variable",
            Policy::AuthenticationManagedIdentity(_) => "authentication-managed-identity",
            Policy::SetMethod(_) => "set-method",
            Policy::SetBody(_) => "set-body",
            Policy::FindAndReplace(_) => "find-and-replace",
            Policy::AuthenticationBasic(_) => "authentication-basic",
            Policy::Trace(_) => "trace",
            Policy::SendRequest(_) => "send-request",
            Policy::TokenLimit(_) => "llm-token-limit",
            Policy::EmitTokenMetric(_) => "llm-emit-token-metric",
        }
    }

    /// Whether it holds a policy expression (for the later sections: their
    /// requests keep a snapshot for it).
    pub fn uses_expressions(&self) -> bool {
        match self {
            Policy::SetHeader(h) => h.uses_expressions(),
            Policy::Choose(c) => c.uses_expressions(),
            Policy::Retry(r) => r.condition().is_some(),
            Policy::SetVariable(v) => v.uses_expressions(),
            // Their Liquid templates and expressions see the request.
            Policy::SetBody(b) => {
                !matches!(b.body, gateway_model::policy::set_body::Body::Literal(_))
            }
            Policy::FindAndReplace(f) => f.uses_expressions(),
            Policy::Trace(t) => t.message.is_expression(),
            Policy::Return(r) => r.uses_expressions(),
            _ => false,
        }
    }

    /// The runtime of a validated policy; `placed.place` names its
    /// counters, which `staging` carries over from the running gateway.
    pub fn build(placed: &Placed, staging: &mut Staging) -> Policy {
        match &placed.spec {
            PolicySpec::Limit(s) => {
                Policy::Limit(limits::Limit::new(s, placed.place.clone(), staging))
            }
            PolicySpec::IpFilter(s) => Policy::IpFilter(ip_filter::IpFilter::new(s)),
            PolicySpec::CheckHeader(s) => Policy::CheckHeader(check_header::CheckHeader::new(s)),
            PolicySpec::Cors(s) => Policy::Cors(cors::Cors::new(s)),
            PolicySpec::SetHeader(s) => Policy::SetHeader(set_header::SetHeader::new(s)),
            PolicySpec::SetQuery(s) => Policy::SetQuery(set_query::SetQuery::new(s)),
            PolicySpec::RewriteUri(s) => Policy::RewriteUri(rewrite_uri::RewriteUri::new(s)),
            PolicySpec::Return(s) => Policy::Return(respond::ReturnResponse::new(s)),
            PolicySpec::SetStatus(s) => Policy::SetStatus(respond::SetStatus(s.0)),
            PolicySpec::ForwardRequest(s) => Policy::ForwardRequest(s.clone()),
            PolicySpec::ValidateJwt(s) => {
                Policy::ValidateJwt(Box::new(jwt::ValidateJwt::new(s, staging)))
            }
            PolicySpec::ValidateClientCertificate(s) => Policy::ValidateClientCertificate(
                Box::new(validate_client_certificate::ValidateClientCertificate::new(
                    s,
                    staging.certificates(),
                )),
            ),
            PolicySpec::AuthenticationCertificate(s) => {
                // The model checked that it exists and has a key file.
                let c = gateway_model::catalog::find_with_key(staging.certificates(), s)
                    .expect("checked when the catalog was validated");
                Policy::AuthenticationCertificate(crate::config::ClientIdentity {
                    cert: crate::config::CertSource::Der(c.der.as_slice().into()),
                    key: c.key_file.clone().unwrap_or_default(),
                })
            }
            PolicySpec::LimitConcurrency(s) => Policy::LimitConcurrency(
                concurrency::LimitConcurrency::new(s, &placed.place, staging),
            ),
            PolicySpec::SetBackend(s) => Policy::SetBackend(match &s.target {
                Target::Url(b) => b.clone(),
                // The model checked the id against the gateway's backends.
                Target::Named(id) => staging
                    .backend(id)
                    .expect("checked when the catalog was validated"),
            }),
            PolicySpec::Retry(s) => Policy::Retry(retry::Retry::new(s)),
            PolicySpec::Choose(s) => Policy::Choose(Box::new(choose::Choose::new(s, staging))),
            PolicySpec::CacheLookup(s) => {
                Policy::CacheLookup(cache::CacheLookup::new(s, &placed.place, staging))
            }
            PolicySpec::CacheStore(s) => Policy::CacheStore(cache::CacheStore::new(s)),
            PolicySpec::CacheLookupValue(s) => {
                Policy::CacheLookupValue(cache::CacheLookupValue::new(s, &placed.place, staging))
            }
            PolicySpec::CacheStoreValue(s) => {
                Policy::CacheStoreValue(cache::CacheStoreValue::new(s, &placed.place, staging))
            }
            PolicySpec::CacheRemoveValue(s) => {
                Policy::CacheRemoveValue(cache::CacheRemoveValue::new(s, &placed.place, staging))
            }
            PolicySpec::SetVariable(s) => Policy::SetVariable(set_variable::SetVariable::new(s)),
            PolicySpec::AuthenticationManagedIdentity(s) => {
                Policy::AuthenticationManagedIdentity(Box::new(
                    managed_identity::ManagedIdentity::new(s, identity_tokens(placed, staging)),
                ))
            }
            PolicySpec::SetMethod(s) => Policy::SetMethod(s.clone()),
            PolicySpec::SetBody(s) => Policy::SetBody(s.clone()),
            PolicySpec::FindAndReplace(s) => Policy::FindAndReplace(s.clone()),
            PolicySpec::AuthenticationBasic(s) => Policy::AuthenticationBasic(s.header.clone()),
            PolicySpec::Trace(s) => Policy::Trace(s.clone()),
            PolicySpec::SendRequest(s) => {
                let identity = s.identity.as_ref().map(|i| {
                    managed_identity::ManagedIdentity::new(i, identity_tokens(placed, staging))
                });
                Policy::SendRequest(Box::new(send_request::SendRequest::new(s, identity)))
            }
            PolicySpec::TokenLimit(s) => {
                Policy::TokenLimit(Box::new(tokens::TokenLimit::new(s, &placed.place, staging)))
            }
            PolicySpec::EmitTokenMetric(s) => {
                Policy::EmitTokenMetric(Box::new(tokens::EmitTokenMetric::new(s)))
            }
        }
    }
}
