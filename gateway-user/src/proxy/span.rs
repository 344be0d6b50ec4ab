//! The server span of one ended request, for the OTLP export: the ids the
//! backend saw in `traceparent`, and attributes named after the
//! OpenTelemetry HTTP semantic conventions plus edgegw's own.

use std::time::Duration;

use edgegw_otlp::ServerSpan;
use opentelemetry::KeyValue;

use super::observe::{Logged, Record};

pub fn build(r: &Record, l: &Logged, bytes_in: u64, bytes_out: u64, total: Duration) -> ServerSpan {
    let method = l.method.as_str();
    let mut attributes = vec![
        KeyValue::new("http.request.method", method.to_string()),
        KeyValue::new("url.path", l.uri.path().to_string()),
        KeyValue::new("url.scheme", l.scheme),
        KeyValue::new("network.protocol.version", l.protocol()),
        KeyValue::new("client.address", l.client_ip.to_string()),
        KeyValue::new("http.response.status_code", i64::from(r.status)),
        KeyValue::new("http.request.body.size", bytes_in as i64),
        KeyValue::new("http.response.body.size", bytes_out as i64),
    ];
    let mut optional = |key: &'static str, value: Option<&str>| {
        if let Some(v) = value {
            attributes.push(KeyValue::new(key, v.to_string()));
        }
    };
    optional("url.query", l.query.as_deref());
    optional("server.address", l.host());
    optional("user_agent.original", l.user_agent());
    optional("edgegw.api", r.api.as_deref());
    optional("edgegw.operation", r.operation.as_deref());
    optional("edgegw.subscription", r.subscription.as_deref());
    optional("edgegw.product", r.product.as_deref());
    optional("edgegw.backend.address", l.backend.as_deref());
    optional("edgegw.refused_by", l.refused_by);
    if !l.traces.is_empty() {
        let lines = l.traces.iter().map(|t| t.line().into()).collect();
        attributes.push(KeyValue::new(
            "edgegw.trace",
            opentelemetry::Value::Array(opentelemetry::Array::String(lines)),
        ));
    }
    if let Some(status) = l.backend_status {
        attributes.push(KeyValue::new(
            "edgegw.backend.status_code",
            i64::from(status),
        ));
    }
    // `{method} {target}`: the operation is the route's name here.
    let name = match r.operation.as_deref().or(r.api.as_deref()) {
        Some(target) => format!("{method} {target}"),
        None => method.to_string(),
    };
    ServerSpan {
        trace_id: r.trace.trace_bytes(),
        span_id: r.trace.span_bytes(),
        parent: r.trace.parent().map(|(span, _)| span),
        name,
        start: l.time,
        end: l.time + total,
        attributes,
        error: r.status >= 500,
    }
}
