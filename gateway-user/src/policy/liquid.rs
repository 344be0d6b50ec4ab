//! The Liquid context of `set-body template="liquid"`, as APIM documents
//! it: `context.Request` (Url with Scheme/Host/Port/Path/Query/
//! QueryString, Method, OriginalUrl, IpAddress, MatchedParameters,
//! HasBody, Headers), `context.Response` (StatusCode, Headers) in
//! outbound, `context.Api`/`Operation`/`Subscription`/`Product`,
//! `context.Variables`, and `body`: the JSON body being replaced (the
//! request's in inbound, the response's after). Built only when a
//! template renders.

use hyper::{HeaderMap, StatusCode};
use liquid::model::{Object, Value};

use super::{
    context::{Query, percent_decode},
    expr::{Facts, Failed, Later},
    respond::{Answer, refusal},
};

fn text(s: impl Into<String>) -> Value {
    Value::scalar(s.into())
}

/// Headers by name as sent (lower case) and as usually written
/// (`Content-Type`): Liquid's lookups are case-sensitive.
fn headers(map: &HeaderMap) -> Value {
    let mut out = Object::new();
    for name in map.keys() {
        let values: Vec<&str> = map
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let joined = values.join(",");
        let title: String = name
            .as_str()
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-");
        out.insert(title.into(), text(joined.clone()));
        out.insert(name.as_str().to_string().into(), text(joined));
    }
    Value::Object(out)
}

fn object<const N: usize>(fields: [(&'static str, Value); N]) -> Value {
    Value::Object(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// The template's globals: `context` and `body`.
pub fn globals(facts: &Facts, later: Option<Later>) -> Object {
    let host = facts
        .headers
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let (host, port) = match host.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse::<i64>().unwrap_or(80)),
        _ => (host, 80),
    };
    let url = |path: &str, query: &Query| {
        let params: Object = query
            .0
            .iter()
            .map(|(n, v)| {
                (
                    percent_decode(n).into(),
                    text(percent_decode(v.as_deref().unwrap_or_default())),
                )
            })
            .collect();
        object([
            ("Scheme", text("http")),
            ("Host", text(host)),
            ("Port", Value::scalar(port)),
            ("Path", text(path)),
            ("Query", Value::Object(params)),
            ("QueryString", text(query.to_suffix())),
        ])
    };
    let original = url(facts.original.0, &Query::parse(facts.original.1));
    let url = url(facts.path, facts.query);
    let params: Object = facts
        .params
        .iter()
        .map(|(n, v)| (n.clone().into(), text(v.clone())))
        .collect();
    let request = object([
        ("Url", url),
        ("OriginalUrl", original),
        ("Method", text(facts.method)),
        ("IpAddress", text(facts.client_ip.to_string())),
        ("MatchedParameters", Value::Object(params)),
        (
            "HasBody",
            Value::scalar(facts.body.is_some_and(|b| !b.is_empty())),
        ),
        ("Headers", headers(facts.headers)),
    ]);
    let variables: Object = facts
        .variables
        .iter()
        .map(|(n, v)| {
            let value = match v {
                edgegw_policy_expr::Value::Json(j) => {
                    liquid::model::to_value(&**j).unwrap_or(Value::Nil)
                }
                other => text(other.to_string()),
            };
            (n.clone().into(), value)
        })
        .collect();
    let named = |name: Option<&str>| match name {
        Some(n) => object([("Id", text(n)), ("Name", text(n))]),
        None => Value::Nil,
    };
    let mut context = Object::new();
    context.insert("Request".into(), request);
    if let Some(l) = later {
        context.insert(
            "Response".into(),
            object([
                ("StatusCode", Value::scalar(i64::from(l.status))),
                ("Headers", headers(l.headers)),
            ]),
        );
    }
    context.insert("Api".into(), named(Some(facts.api)));
    context.insert("Operation".into(), named(facts.operation));
    context.insert("Subscription".into(), named(facts.subscription));
    context.insert("Product".into(), named(facts.product));
    context.insert("Variables".into(), Value::Object(variables));
    let body = match later {
        Some(l) => l.body,
        None => facts.body,
    };
    let body = body
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        .and_then(|j| liquid::model::to_value(&j).ok())
        .unwrap_or(Value::Nil);
    let mut globals = Object::new();
    globals.insert("context".into(), Value::Object(context));
    globals.insert("body".into(), body);
    globals
}

/// A template that failed to render: 500 through on-error, logged.
pub fn failure(err: &liquid::Error) -> Answer {
    let message: Vec<String> = err
        .to_string()
        .split_whitespace()
        .map(String::from)
        .collect();
    let message = message.join(" ");
    tracing::warn!(policy = "set-body", "Liquid template failed: {message}");
    let mut answer = refusal(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
    answer.extensions_mut().insert(Failed {
        source: "set-body",
        reason: "LiquidTemplateFailure",
        message,
    });
    answer
}
