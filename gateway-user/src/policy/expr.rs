//! Policy expressions (`@(...)`, `@{...}`), evaluated per request. They
//! were parsed and type-checked when the policy was loaded
//! (`gateway_model::policy::expr`); here the request is shown to them as
//! APIM's `context` (`edgegw_policy_expr::Context`). The context is built
//! only by policies that hold an expression: other requests pay nothing.
//!
//! What edgegw knows of the request fills the context: method, headers,
//! client IP, the path after the API prefix and the query, the matched
//! URL template parameters, the subscription, product, API and operation
//! names. Variables are empty (no `set-variable` yet); `Response` and
//! `LastError` are null in the inbound section.
//!
//! A failed evaluation is never a pass: the policy answers 500 through
//! the on-error section, and the failure (policy, line, column, message)
//! is logged.

use edgegw_policy_expr::{
    Api, Context, Deployment, EXPRESSION_FAILURE, EvalError, Expression, Operation, Product,
    Request, Subscription, Url, Value, Variables,
};
use hyper::{StatusCode, header};

use super::{
    context::{Ctx, percent_decode},
    respond::{Answer, refusal},
};

/// Evaluates `e` against the request and hands its value to `with` (the
/// value may borrow the request, so it lives only for the call).
pub fn eval<R>(e: &Expression, ctx: &Ctx, with: impl FnOnce(&Value) -> R) -> Result<R, EvalError> {
    let ip = ctx.client_ip.to_string();
    let query: Vec<(String, String)> = ctx
        .query
        .0
        .iter()
        .map(|(n, v)| {
            (
                percent_decode(n),
                percent_decode(v.as_deref().unwrap_or_default()),
            )
        })
        .collect();
    let query_string = ctx.query.to_suffix();
    let host = ctx
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
        path: &ctx.path,
        query: &query,
        query_string: &query_string,
    };
    let variables = Variables::new();
    let context = Context {
        request: Request {
            method: ctx.method.as_str(),
            url,
            original_url: url,
            headers: ctx.headers,
            ip_address: &ip,
            body: None,
            matched_parameters: ctx.params,
        },
        response: None,
        subscription: ctx.subscription.map(|id| Subscription {
            id,
            name: id,
            ..Subscription::default()
        }),
        product: ctx.product.map(|name| Product { id: name, name }),
        api: Some(Api {
            id: ctx.api,
            name: ctx.api,
            ..Api::default()
        }),
        operation: ctx.operation.map(|name| Operation {
            id: name,
            name,
            method: ctx.method.as_str(),
            ..Operation::default()
        }),
        user: None,
        variables: &variables,
        last_error: None,
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

/// The expression's value as text (.NET's `ToString()`).
pub fn text(e: &Expression, ctx: &Ctx) -> Result<String, EvalError> {
    eval(e, ctx, |v| v.to_string())
}

/// A condition's value; null is a failure, as in APIM.
pub fn holds(e: &Expression, ctx: &Ctx) -> Result<bool, EvalError> {
    eval(e, ctx, |v| v.as_bool())?.ok_or_else(|| EvalError {
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
    tracing::warn!(
        policy,
        expression = e.source(),
        line = err.line,
        column = err.column,
        reason = err.reason,
        "{}",
        err.message
    );
    refusal(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
}
