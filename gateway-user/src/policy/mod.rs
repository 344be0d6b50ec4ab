//! The policy pipeline of API management.
//!
//! Policies are declared per scope (global → product → API → operation)
//! and per section (inbound, backend, outbound, on-error); in a scope,
//! `base` marks where the enclosing scope's policies of the same section
//! run (`scope` composes them). Each policy is a small type in its own
//! file; `Policy` lists them and says in which sections each can run.
//! A policy the gateway does not know, or one placed in a section where it
//! cannot run, is a configuration error naming it and its place.

mod check_header;
mod choose;
mod concurrency;
mod condition;
pub mod context;
mod cors;
pub mod counters;
mod fetch;
mod forward_request;
pub mod gate;
mod ip_filter;
pub(crate) mod jwt;
mod limits;
mod parse;
mod per_thread;
mod pipeline;
mod respond;
mod retry;
mod rewrite_uri;
mod scope;
mod set_backend;
mod set_header;
mod set_query;
pub mod template;
pub mod xdp_state;

pub use limits::Charge;
pub use parse::{ScopePolicies, parse_scope};
pub use pipeline::{Flow, Pipeline};
pub use respond::json_error;
pub use retry::Retry;
pub use scope::compose;
pub use xdp_state::XdpState;

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

    fn index(self) -> usize {
        self as usize
    }
}

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
    ForwardRequest(forward_request::ForwardRequest),
    ValidateJwt(Box<jwt::ValidateJwt>),
    LimitConcurrency(concurrency::LimitConcurrency),
    SetBackend(set_backend::SetBackend),
    Retry(retry::Retry),
    /// `choose` / `when` / `otherwise` (parsed in `parse.rs`: its branches
    /// need the section and named values).
    Choose(Box<choose::Choose>),
}

/// Policy names, and the sections each may appear in.
const KNOWN: &[(&str, &[Section])] = {
    use Section::*;
    &[
        ("rate-limit", &[Inbound]),
        ("rate-limit-by-key", &[Inbound]),
        ("quota", &[Inbound]),
        ("quota-by-key", &[Inbound]),
        ("ip-filter", &[Inbound]),
        ("check-header", &[Inbound]),
        ("cors", &[Inbound]),
        ("set-header", &[Inbound, Outbound, OnError]),
        ("set-query-parameter", &[Inbound]),
        ("rewrite-uri", &[Inbound]),
        ("mock-response", &[Inbound]),
        ("return-response", &[Inbound, Outbound, OnError]),
        ("set-status", &[Outbound, OnError]),
        ("forward-request", &[Backend]),
        ("validate-jwt", &[Inbound]),
        ("limit-concurrency", &[Inbound]),
        ("set-backend-service", &[Inbound]),
        ("retry", &[Backend]),
    ]
};

impl Policy {
    /// Builds the policy `name` from its settings, for `section`.
    pub fn build(name: &str, section: Section, args: serde_yaml::Value) -> Result<Policy, String> {
        let Some((name, sections)) = KNOWN.iter().find(|(n, _)| *n == name) else {
            let known: Vec<&str> = KNOWN.iter().map(|(n, _)| *n).chain(["choose"]).collect();
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
        use limits::Kind::{Quota, RateLimit};
        let built = match *name {
            "rate-limit" => limits::Limit::parse(name, RateLimit, false, args).map(Policy::Limit),
            "rate-limit-by-key" => {
                limits::Limit::parse(name, RateLimit, true, args).map(Policy::Limit)
            }
            "quota" => limits::Limit::parse(name, Quota, false, args).map(Policy::Limit),
            "quota-by-key" => limits::Limit::parse(name, Quota, true, args).map(Policy::Limit),
            "ip-filter" => ip_filter::IpFilter::parse(args).map(Policy::IpFilter),
            "check-header" => check_header::CheckHeader::parse(args).map(Policy::CheckHeader),
            "cors" => cors::Cors::parse(args).map(Policy::Cors),
            "set-header" => set_header::SetHeader::parse(args).map(Policy::SetHeader),
            "set-query-parameter" => set_query::SetQuery::parse(args).map(Policy::SetQuery),
            "rewrite-uri" => rewrite_uri::RewriteUri::parse(args).map(Policy::RewriteUri),
            "mock-response" | "return-response" => {
                respond::ReturnResponse::parse(args).map(Policy::Return)
            }
            "set-status" => respond::SetStatus::parse(args).map(Policy::SetStatus),
            "forward-request" => {
                forward_request::ForwardRequest::parse(args).map(Policy::ForwardRequest)
            }
            "validate-jwt" => {
                jwt::ValidateJwt::parse(args).map(|j| Policy::ValidateJwt(Box::new(j)))
            }
            "limit-concurrency" => {
                concurrency::LimitConcurrency::parse(args).map(Policy::LimitConcurrency)
            }
            "set-backend-service" => set_backend::SetBackend::parse(args).map(Policy::SetBackend),
            "retry" => retry::Retry::parse(args).map(Policy::Retry),
            other => unreachable!("policy {other} is listed in KNOWN but not built"),
        };
        built.map_err(|m| format!("policy \"{name}\": {}", one_line(&m)))
    }

    /// Tells the policy where it sits (`api orders/inbound/0`): the name of
    /// its fleet-wide counters and of the state reloads carry over.
    fn placed(mut self, place: String) -> Policy {
        match &mut self {
            Policy::Limit(limit) => limit.set_place(place),
            Policy::LimitConcurrency(l) => l.set_place(&place),
            _ => {}
        }
        self
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
