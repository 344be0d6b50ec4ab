//! Policy specs: every policy's settings, validated, with the section and
//! scope it was written in. The gateway builds each policy's runtime from
//! its spec (`gateway-user/src/policy`); the control plane only validates.
//!
//! Policies are declared per scope (global → product → API → operation)
//! and per section (inbound, backend, outbound, on-error); in a scope,
//! `base` marks where the enclosing scope's policies of the same section
//! run. A policy the gateway does not know, or one placed in a section
//! where it cannot run, is a configuration error naming it and its place.
//!
//! Adding a policy: a spec file here (settings struct + `parse`), a row in
//! `KNOWN` and a variant of `PolicySpec`; then its runtime file in
//! gateway-user and its arm in `Policy::build` there.

pub mod authentication_basic;
pub mod authentication_certificate;
pub mod authentication_managed_identity;
pub mod cache_lookup;
pub mod cache_lookup_value;
pub mod cache_remove_value;
pub mod cache_store;
pub mod cache_store_value;
pub mod check_header;
pub mod choose;
pub mod concurrency;
pub mod condition;
pub mod cors;
pub mod emit_token_metric;
pub mod expr;
pub mod find_and_replace;
pub mod forward_request;
pub mod ip_filter;
pub mod key_template;
pub mod limits;
mod parse;
pub mod respond;
pub mod retry;
pub mod rewrite_uri;
pub mod send_request;
pub mod set_backend;
pub mod set_body;
pub mod set_header;
pub mod set_method;
pub mod set_query;
pub mod set_variable;
pub mod token_limit;
pub mod trace;
pub mod validate_client_certificate;
pub mod validate_jwt;

pub(crate) use parse::expand_fragment;
pub use parse::{Placed, ScopePolicies, Step, parse_scope};

/// Where in the request's life a policy runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Inbound,
    Backend,
    Outbound,
    OnError,
}

impl Section {
    pub const ALL: [Section; 4] = [
        Section::Inbound,
        Section::Backend,
        Section::Outbound,
        Section::OnError,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Section::Inbound => "inbound",
            Section::Backend => "backend",
            Section::Outbound => "outbound",
            Section::OnError => "on-error",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Every policy the gateway knows, validated.
#[derive(Debug)]
pub enum PolicySpec {
    Limit(limits::LimitSpec),
    IpFilter(ip_filter::IpFilterSpec),
    CheckHeader(check_header::CheckHeaderSpec),
    Cors(cors::CorsSpec),
    SetHeader(set_header::SetHeaderSpec),
    SetQuery(set_query::SetQuerySpec),
    RewriteUri(rewrite_uri::RewriteUriSpec),
    /// `return-response` and `mock-response`.
    Return(respond::ReturnResponseSpec),
    SetStatus(respond::SetStatusSpec),
    ForwardRequest(forward_request::ForwardRequestSpec),
    ValidateJwt(Box<validate_jwt::ValidateJwtSpec>),
    ValidateClientCertificate(Box<validate_client_certificate::ValidateClientCertificateSpec>),
    AuthenticationCertificate(authentication_certificate::AuthenticationCertificateSpec),
    AuthenticationManagedIdentity(
        authentication_managed_identity::AuthenticationManagedIdentitySpec,
    ),
    LimitConcurrency(concurrency::LimitConcurrencySpec),
    SetBackend(set_backend::SetBackendSpec),
    Retry(retry::RetrySpec),
    /// `choose` / `when` / `otherwise` (parsed in `parse.rs`: its branches
    /// need the section and named values).
    Choose(Box<choose::ChooseSpec>),
    CacheLookup(cache_lookup::CacheLookupSpec),
    CacheStore(cache_store::CacheStoreSpec),
    CacheLookupValue(cache_lookup_value::CacheLookupValueSpec),
    CacheStoreValue(cache_store_value::CacheStoreValueSpec),
    CacheRemoveValue(cache_remove_value::CacheRemoveValueSpec),
    SetVariable(set_variable::SetVariableSpec),
    SetMethod(set_method::SetMethodSpec),
    SetBody(set_body::SetBodySpec),
    FindAndReplace(find_and_replace::FindAndReplaceSpec),
    AuthenticationBasic(authentication_basic::AuthenticationBasicSpec),
    Trace(trace::TraceSpec),
    SendRequest(Box<send_request::SendRequestSpec>),
    TokenLimit(Box<token_limit::TokenLimitSpec>),
    EmitTokenMetric(emit_token_metric::EmitTokenMetricSpec),
}

type Parser = fn(&'static str, serde_yaml::Value) -> Result<PolicySpec, String>;

/// Policy names, the sections each may appear in, and their parsers.
pub const KNOWN: &[(&str, &[Section], Parser)] = {
    use Section::*;
    use limits::{Kind::Quota, Kind::RateLimit, LimitSpec};
    &[
        ("rate-limit", &[Inbound], |n, a| {
            LimitSpec::parse(n, RateLimit, false, a).map(PolicySpec::Limit)
        }),
        ("rate-limit-by-key", &[Inbound], |n, a| {
            LimitSpec::parse(n, RateLimit, true, a).map(PolicySpec::Limit)
        }),
        ("quota", &[Inbound], |n, a| {
            LimitSpec::parse(n, Quota, false, a).map(PolicySpec::Limit)
        }),
        ("quota-by-key", &[Inbound], |n, a| {
            LimitSpec::parse(n, Quota, true, a).map(PolicySpec::Limit)
        }),
        ("ip-filter", &[Inbound], |_, a| {
            ip_filter::IpFilterSpec::parse(a).map(PolicySpec::IpFilter)
        }),
        ("check-header", &[Inbound], |_, a| {
            check_header::CheckHeaderSpec::parse(a).map(PolicySpec::CheckHeader)
        }),
        ("cors", &[Inbound], |_, a| {
            cors::CorsSpec::parse(a).map(PolicySpec::Cors)
        }),
        ("set-header", &[Inbound, Outbound, OnError], |_, a| {
            set_header::SetHeaderSpec::parse(a).map(PolicySpec::SetHeader)
        }),
        ("set-query-parameter", &[Inbound], |_, a| {
            set_query::SetQuerySpec::parse(a).map(PolicySpec::SetQuery)
        }),
        ("rewrite-uri", &[Inbound], |_, a| {
            rewrite_uri::RewriteUriSpec::parse(a).map(PolicySpec::RewriteUri)
        }),
        ("mock-response", &[Inbound], |_, a| {
            respond::ReturnResponseSpec::parse(a).map(PolicySpec::Return)
        }),
        ("return-response", &[Inbound, Outbound, OnError], |_, a| {
            respond::ReturnResponseSpec::parse(a).map(PolicySpec::Return)
        }),
        ("set-status", &[Outbound, OnError], |_, a| {
            respond::SetStatusSpec::parse(a).map(PolicySpec::SetStatus)
        }),
        ("forward-request", &[Backend], |_, a| {
            forward_request::ForwardRequestSpec::parse(a).map(PolicySpec::ForwardRequest)
        }),
        ("validate-jwt", &[Inbound], |_, a| {
            validate_jwt::ValidateJwtSpec::parse(a).map(|j| PolicySpec::ValidateJwt(Box::new(j)))
        }),
        ("validate-client-certificate", &[Inbound], |_, a| {
            validate_client_certificate::ValidateClientCertificateSpec::parse(a)
                .map(|v| PolicySpec::ValidateClientCertificate(Box::new(v)))
        }),
        ("authentication-certificate", &[Inbound], |_, a| {
            authentication_certificate::AuthenticationCertificateSpec::parse(a)
                .map(PolicySpec::AuthenticationCertificate)
        }),
        ("authentication-managed-identity", &[Inbound], |_, a| {
            authentication_managed_identity::AuthenticationManagedIdentitySpec::parse(a)
                .map(PolicySpec::AuthenticationManagedIdentity)
        }),
        ("limit-concurrency", &[Inbound], |_, a| {
            concurrency::LimitConcurrencySpec::parse(a).map(PolicySpec::LimitConcurrency)
        }),
        ("set-backend-service", &[Inbound], |_, a| {
            set_backend::SetBackendSpec::parse(a).map(PolicySpec::SetBackend)
        }),
        ("retry", &[Backend], |_, a| {
            retry::RetrySpec::parse(a).map(PolicySpec::Retry)
        }),
        ("cache-lookup", &[Inbound], |_, a| {
            cache_lookup::CacheLookupSpec::parse(a).map(PolicySpec::CacheLookup)
        }),
        ("cache-store", &[Outbound], |_, a| {
            cache_store::CacheStoreSpec::parse(a).map(PolicySpec::CacheStore)
        }),
        ("cache-lookup-value", &[Inbound], |_, a| {
            cache_lookup_value::CacheLookupValueSpec::parse(a).map(PolicySpec::CacheLookupValue)
        }),
        ("cache-store-value", &[Inbound], |_, a| {
            cache_store_value::CacheStoreValueSpec::parse(a).map(PolicySpec::CacheStoreValue)
        }),
        ("cache-remove-value", &[Inbound], |_, a| {
            cache_remove_value::CacheRemoveValueSpec::parse(a).map(PolicySpec::CacheRemoveValue)
        }),
        ("set-variable", &[Inbound, Outbound, OnError], |_, a| {
            set_variable::SetVariableSpec::parse(a).map(PolicySpec::SetVariable)
        }),
        ("set-method", &[Inbound], |_, a| {
            set_method::SetMethodSpec::parse(a).map(PolicySpec::SetMethod)
        }),
        ("set-body", &[Inbound, Outbound, OnError], |_, a| {
            set_body::SetBodySpec::parse(a).map(PolicySpec::SetBody)
        }),
        ("find-and-replace", &[Inbound, Outbound, OnError], |_, a| {
            find_and_replace::FindAndReplaceSpec::parse(a).map(PolicySpec::FindAndReplace)
        }),
        ("authentication-basic", &[Inbound], |_, a| {
            authentication_basic::AuthenticationBasicSpec::parse(a)
                .map(PolicySpec::AuthenticationBasic)
        }),
        ("trace", &[Inbound, Outbound, OnError], |_, a| {
            trace::TraceSpec::parse(a).map(PolicySpec::Trace)
        }),
        ("send-request", &[Inbound], |_, a| {
            send_request::SendRequestSpec::parse(a).map(|s| PolicySpec::SendRequest(Box::new(s)))
        }),
        ("llm-token-limit", &[Inbound], |_, a| {
            token_limit::TokenLimitSpec::parse(a).map(|t| PolicySpec::TokenLimit(Box::new(t)))
        }),
        ("llm-emit-token-metric", &[Inbound], |_, a| {
            emit_token_metric::EmitTokenMetricSpec::parse(a).map(PolicySpec::EmitTokenMetric)
        }),
    ]
};

impl PolicySpec {
    /// Validates the policy `name`'s settings, for `section`.
    pub fn parse(
        name: &str,
        section: Section,
        args: serde_yaml::Value,
    ) -> Result<PolicySpec, String> {
        let Some((name, sections, parse)) = KNOWN.iter().find(|(n, _, _)| *n == name) else {
            let known: Vec<&str> = KNOWN.iter().map(|(n, _, _)| *n).chain(["choose"]).collect();
            return Err(format!(
                "unknown policy \"{name}\"; known policies: {}",
                known.join(", ")
            ));
        };
        if !sections.contains(&section) {
            let allowed: Vec<&str> = sections.iter().map(|s| s.name()).collect();
            return Err(format!(
                "policy \"{name}\" cannot run in the {} section; it runs in: {}",
                section.name(),
                allowed.join(", ")
            ));
        }
        let args = match args {
            serde_yaml::Value::Null => serde_yaml::Value::Mapping(Default::default()),
            a => a,
        };
        parse(name, args).map_err(|m| format!("policy \"{name}\": {}", one_line(&m)))
    }

    /// Whether a setting is computed per request by a policy expression.
    pub fn uses_expressions(&self) -> bool {
        match self {
            PolicySpec::Limit(l) => l.key_expression.is_some(),
            PolicySpec::SetHeader(h) => h.expression.is_some(),
            PolicySpec::Retry(r) => r.condition.is_some(),
            PolicySpec::SetVariable(v) => v.value.is_expression(),
            PolicySpec::SetMethod(m) => matches!(m, set_method::SetMethodSpec::Expr(_)),
            PolicySpec::SetBody(b) => matches!(b.body, set_body::Body::Expr(_)),
            PolicySpec::FindAndReplace(f) => f.uses_expressions(),
            PolicySpec::Trace(t) => t.message.is_expression(),
            PolicySpec::SetQuery(q) => q.value.as_ref().is_some_and(|v| v.is_expression()),
            PolicySpec::RewriteUri(r) => r.expression.is_some(),
            PolicySpec::SendRequest(s) => {
                s.url.is_expression()
                    || matches!(s.method, Some(set_method::SetMethodSpec::Expr(_)))
                    || s.headers.iter().any(|h| h.expression.is_some())
                    || s.body
                        .as_ref()
                        .is_some_and(|b| !matches!(b.body, set_body::Body::Literal(_)))
            }
            PolicySpec::Choose(c) => {
                c.whens.iter().any(|(cond, list)| {
                    matches!(cond, condition::Condition::Expression(_))
                        || list.iter().any(|p| p.spec.uses_expressions())
                }) || c.otherwise.iter().any(|p| p.spec.uses_expressions())
            }
            _ => false,
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses a status code a policy answers with.
pub fn status(code: u16) -> Result<http::StatusCode, String> {
    http::StatusCode::from_u16(code)
        .ok()
        .filter(|s| s.as_u16() >= 200)
        .ok_or_else(|| format!("status code {code} is not a final HTTP status (200-999)"))
}

/// Serde helper for text settings: a YAML number or boolean (`value: 2`)
/// is taken as its text.
pub(crate) fn scalar<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::{Deserialize, de::Error};
    match serde_yaml::Value::deserialize(d)? {
        serde_yaml::Value::Null => Ok(None),
        serde_yaml::Value::String(s) => Ok(Some(s)),
        serde_yaml::Value::Number(n) => Ok(Some(n.to_string())),
        serde_yaml::Value::Bool(b) => Ok(Some(b.to_string())),
        _ => Err(D::Error::custom("expected text, a number or a boolean")),
    }
}

/// Reads a policy's settings into its file struct; serde's message on error.
pub(crate) fn settings<T: serde::de::DeserializeOwned>(
    args: serde_yaml::Value,
) -> Result<T, String> {
    serde_yaml::from_value(args).map_err(|e| e.to_string())
}
