//! Policy expressions (`@(...)`, `@{...}`), evaluated per request. They
//! were parsed and type-checked when the policy was loaded
//! (`gateway_model::policy::expr`); here the request is shown to them as
//! APIM's `context` (`edgegw_policy_expr::Context`). The context is built
//! only by policies that hold an expression: other requests pay nothing.
//!
//! What edgegw knows of the request fills the context: method, headers,
//! client IP, the path after the API prefix and the query, the matched
//! URL template parameters, the subscription, product, API and operation
//! names; `Variables` are those `set-variable` set so far. `Response` is the
//! response's status and headers in outbound and on-error (and the
//! backend's answer for `retry`), null in inbound; `LastError` is filled
//! in on-error (Source: the failed or refusing policy, Reason, Message).
//!
//! A failed evaluation is never a pass: the policy answers 500 through
//! the on-error section, and the failure (policy, line, column, message)
//! is logged.

use std::net::IpAddr;

use edgegw_policy_expr::{
    Api, Context, Deployment, EXPRESSION_FAILURE, EvalError, Expression, LastError, Operation,
    Product, Request, Response, Subscription, Url, Value, Variables,
};
use hyper::{HeaderMap, StatusCode, header};

use super::{
    RefusedBy,
    context::{Ctx, Query, percent_decode},
    respond::{Answer, refusal},
};

/// What an expression sees of the request: borrowed from the request
/// while inbound runs, from a `Snapshot` in the later sections.
pub struct Facts<'a> {
    pub method: &'a str,
    pub headers: &'a HeaderMap,
    pub client_ip: IpAddr,
    pub path: &'a str,
    pub query: &'a Query,
    /// The client's path and query (`OriginalUrl`).
    pub original: (&'a str, Option<&'a str>),
    pub api: &'a str,
    pub operation: Option<&'a str>,
    pub params: &'a [(String, String)],
    pub subscription: Option<&'a str>,
    pub product: Option<&'a str>,
    pub variables: &'a Variables<'static>,
    /// The request body, when a body policy read it (inbound only).
    pub body: Option<&'a [u8]>,
}

impl<'a> Facts<'a> {
    pub fn of(ctx: &'a Ctx) -> Facts<'a> {
        Facts {
            method: ctx.current_method().as_str(),
            headers: ctx.headers,
            client_ip: ctx.client_ip,
            path: &ctx.path,
            query: &ctx.query,
            original: ctx.original,
            api: ctx.api,
            operation: ctx.operation,
            params: ctx.params,
            subscription: ctx.subscription,
            product: ctx.product,
            variables: &ctx.variables,
            body: ctx.body.bytes.as_deref(),
        }
    }
}

/// The request as inbound left it, kept for expressions of the backend,
/// outbound and on-error sections; taken only by pipelines that have
/// such expressions.
#[derive(Debug)]
pub struct Snapshot {
    method: String,
    headers: HeaderMap,
    client_ip: IpAddr,
    path: String,
    query: Query,
    original: (String, Option<String>),
    api: String,
    operation: Option<String>,
    params: Vec<(String, String)>,
    subscription: Option<String>,
    product: Option<String>,
    variables: Variables<'static>,
}

impl Snapshot {
    /// A variable set after inbound (`llm-token-limit`'s tokens consumed).
    pub fn set_variable(&mut self, name: String, value: edgegw_policy_expr::Value<'static>) {
        self.variables.insert(name, value);
    }

    pub fn of(ctx: &Ctx) -> Snapshot {
        Snapshot {
            method: ctx.current_method().as_str().to_string(),
            headers: ctx.headers.clone(),
            client_ip: ctx.client_ip,
            path: ctx.path.clone(),
            query: ctx.query.clone(),
            original: (ctx.original.0.to_string(), ctx.original.1.map(String::from)),
            api: ctx.api.to_string(),
            operation: ctx.operation.map(String::from),
            params: ctx.params.to_vec(),
            subscription: ctx.subscription.map(String::from),
            product: ctx.product.map(String::from),
            variables: ctx.variables.clone(),
        }
    }

    /// A request with nothing known: what literal settings of the later
    /// sections are made with when the pipeline keeps no snapshot.
    pub fn empty() -> Snapshot {
        Snapshot {
            method: String::new(),
            headers: HeaderMap::new(),
            client_ip: IpAddr::from([0, 0, 0, 0]),
            path: String::new(),
            query: Query::default(),
            original: (String::new(), None),
            api: String::new(),
            operation: None,
            params: Vec::new(),
            subscription: None,
            product: None,
            variables: Variables::default(),
        }
    }

    /// The variables inbound left, for the later sections to go on from.
    pub fn variables(&self) -> &Variables<'static> {
        &self.variables
    }

    pub fn facts(&self) -> Facts<'_> {
        self.facts_with(&self.variables)
    }

    /// The facts with the variables as a later section has them now.
    pub fn facts_with<'a>(&'a self, variables: &'a Variables<'static>) -> Facts<'a> {
        Facts {
            method: &self.method,
            headers: &self.headers,
            client_ip: self.client_ip,
            path: &self.path,
            query: &self.query,
            original: (&self.original.0, self.original.1.as_deref()),
            api: &self.api,
            operation: self.operation.as_deref(),
            params: &self.params,
            subscription: self.subscription.as_deref(),
            product: self.product.as_deref(),
            variables,
            body: None,
        }
    }
}

/// The response an outbound or on-error expression sees, and in
/// on-error the failure (`context.LastError`).
#[derive(Clone, Copy)]
pub struct Later<'a> {
    pub status: u16,
    pub headers: &'a HeaderMap,
    pub last_error: Option<&'a Failed>,
    /// The response body, when a body policy read or set it.
    pub body: Option<&'a [u8]>,
}

/// Evaluates `e` against the request's context and hands its value to
/// `with` (the value may borrow the request, so it lives only for the
/// call).
pub fn eval<R>(e: &Expression, ctx: &Ctx, with: impl FnOnce(&Value) -> R) -> Result<R, EvalError> {
    eval_with(e, &Facts::of(ctx), None, with)
}

/// `eval` with what the later sections add.
pub fn eval_with<R>(
    e: &Expression,
    facts: &Facts,
    later: Option<Later>,
    with: impl FnOnce(&Value) -> R,
) -> Result<R, EvalError> {
    let ip = facts.client_ip.to_string();
    let query = decoded(facts.query);
    let query_string = facts.query.to_suffix();
    let host = facts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let (host, port) = match host.rsplit_once(':') {
        Some((h, p)) if p.parse::<i32>().is_ok() => (h, p.parse().unwrap_or(0)),
        _ => (host, 0),
    };
    let url = Url {
        scheme: "http",
        host,
        port,
        path: facts.path,
        query: &query,
        query_string: &query_string,
    };
    // As the client sent it: before `rewrite-uri` and `set-query-parameter`,
    // with the API's prefix.
    let original_query = Query::parse(facts.original.1);
    let original_pairs = decoded(&original_query);
    let original_string = original_query.to_suffix();
    let original_url = Url {
        path: facts.original.0,
        query: &original_pairs,
        query_string: &original_string,
        ..url
    };
    let reason = later.and_then(|l| StatusCode::from_u16(l.status).ok()?.canonical_reason());
    let context = Context {
        request: Request {
            method: facts.method,
            url,
            original_url,
            headers: facts.headers,
            ip_address: &ip,
            body: facts.body,
            matched_parameters: facts.params,
        },
        response: later.map(|l| Response {
            status_code: i32::from(l.status),
            status_reason: reason.unwrap_or_default(),
            headers: l.headers,
            body: l.body,
        }),
        subscription: facts.subscription.map(|id| Subscription {
            id,
            name: id,
            ..Subscription::default()
        }),
        product: facts.product.map(|name| Product { id: name, name }),
        api: Some(Api {
            id: facts.api,
            name: facts.api,
            ..Api::default()
        }),
        operation: facts.operation.map(|name| Operation {
            id: name,
            name,
            method: facts.method,
            ..Operation::default()
        }),
        user: None,
        variables: facts.variables,
        last_error: later.and_then(|l| l.last_error).map(|f| LastError {
            source: f.source,
            reason: f.reason,
            message: &f.message,
            ..LastError::default()
        }),
        deployment: Deployment {
            service_name: "edgegw",
            ..Deployment::default()
        },
        request_id: 0,
        timestamp: time::OffsetDateTime::now_utc(),
        elapsed: time::Duration::ZERO,
    };
    let value = e.eval(&context)?;
    Ok(with(&value))
}

/// A query's parameters, decoded, in order.
fn decoded(query: &Query) -> Vec<(String, String)> {
    query
        .0
        .iter()
        .map(|(n, v)| {
            (
                percent_decode(n),
                percent_decode(v.as_deref().unwrap_or_default()),
            )
        })
        .collect()
}

/// The expression's value as text (.NET's `ToString()`).
pub fn text(e: &Expression, ctx: &Ctx) -> Result<String, EvalError> {
    eval(e, ctx, |v| v.to_string())
}

/// A condition's value; null is a failure, as in APIM.
pub fn holds(e: &Expression, ctx: &Ctx) -> Result<bool, EvalError> {
    holds_with(e, &Facts::of(ctx), None)
}

/// `holds` with what the later sections add.
pub fn holds_with(e: &Expression, facts: &Facts, later: Option<Later>) -> Result<bool, EvalError> {
    eval_with(e, facts, later, |v| v.as_bool())?.ok_or_else(|| EvalError {
        reason: EXPRESSION_FAILURE,
        message: "Expression evaluation failed. Nullable object must have a value.".into(),
        line: 0,
        column: 0,
    })
}

/// A failure of what the gateway does with an expression's value.
pub fn message(e: &Expression, what: &str) -> EvalError {
    EvalError {
        reason: EXPRESSION_FAILURE,
        message: format!("Expression evaluation failed. {}: {what}", e.source()),
        line: 0,
        column: 0,
    }
}

/// What the client gets when an expression of `policy` failed: 500,
/// through the on-error section; the failure is logged.
pub fn failure(policy: &'static str, e: &Expression, err: &EvalError) -> Answer {
    log_failure(policy, e, err);
    let mut answer = refusal(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
    answer.extensions_mut().insert(Failed {
        source: policy,
        reason: err.reason,
        message: err.message.clone(),
    });
    answer
}

/// Logs a failed expression with its policy, line and column.
pub fn log_failure(policy: &'static str, e: &Expression, err: &EvalError) {
    tracing::warn!(
        policy,
        expression = e.source(),
        line = err.line,
        column = err.column,
        reason = err.reason,
        "{}",
        err.message
    );
}

/// What on-error's `context.LastError` shows (Source, Reason, Message):
/// carried on the answer of a failed expression.
#[derive(Clone, Debug)]
pub struct Failed {
    pub source: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl Failed {
    /// The failure behind an error response: a failed expression, a
    /// policy's refusal, or the backend.
    pub fn of(extensions: &hyper::http::Extensions, status: StatusCode) -> Failed {
        if let Some(f) = extensions.get::<Failed>() {
            return f.clone();
        }
        let reason = match status.as_u16() {
            401 | 403 => "Unauthorized",
            404 => "OperationNotFound",
            429 => "RateLimitExceeded",
            502 => "BackendConnectionFailure",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "PolicyError",
        };
        let source = extensions
            .get::<RefusedBy>()
            .map_or("forward-request", |r| r.0);
        Failed {
            source,
            reason,
            message: status.canonical_reason().unwrap_or_default().to_string(),
        }
    }
}
