//! `trace`: an event (source, severity, message, metadata) for the
//! request's access-log line (`edgegw.trace`) and, when the request's
//! span is sampled, its span (`edgegw.trace` attribute). Nothing is
//! kept for requests whose pipeline has no trace policy.

use std::collections::BTreeMap;

use gateway_model::policy::{expr::Text, trace::TraceSpec};

use super::{
    expr::{self, Facts, Later},
    respond::Answer,
};

/// One `trace` policy's output.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Event {
    pub source: String,
    pub severity: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl Event {
    /// One line for a span attribute: `source [severity] message k=v`.
    pub fn line(&self) -> String {
        let mut out = format!("{} [{}] {}", self.source, self.severity, self.message);
        for (k, v) in &self.metadata {
            out.push_str(&format!(" {k}={v}"));
        }
        out
    }
}

/// The events of the outbound and on-error sections, carried to the
/// access log on the response (an extension: never on the wire).
#[derive(Clone, Debug, Default)]
pub struct Traces(pub Vec<Event>);

/// The event; a failed message expression is the answer.
pub fn event(spec: &TraceSpec, facts: &Facts, later: Option<Later>) -> Result<Event, Box<Answer>> {
    let message = match &spec.message {
        Text::Literal(l) => l.clone(),
        Text::Expr(e) => expr::eval_with(e, facts, later, |v| v.to_string())
            .map_err(|err| Box::new(expr::failure("trace", e, &err)))?,
    };
    let mut metadata = BTreeMap::new();
    for (name, value) in &spec.metadata {
        let value = match value {
            Text::Literal(l) => l.clone(),
            Text::Expr(e) => expr::eval_with(e, facts, later, |v| v.to_string())
                .map_err(|err| Box::new(expr::failure("trace", e, &err)))?,
        };
        metadata.insert(name.clone(), value);
    }
    Ok(Event {
        source: spec.source.clone(),
        severity: spec.severity.name(),
        message,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::context::Ctx;

    #[test]
    fn literal_and_expression_messages_and_metadata() {
        let spec = |s: &str| TraceSpec::parse(serde_yaml::from_str(s).unwrap()).unwrap();
        let method = hyper::Method::PUT;
        let mut headers = hyper::HeaderMap::new();
        let ctx = Ctx::test(&method, &mut headers);
        let e = event(
            &spec("{source: shop, severity: error, message: '@(\"m=\" + context.Request.Method)', metadata: [{name: k, value: v}, {name: m, value: '@(context.Request.Method.ToLower())'}]}"),
            &Facts::of(&ctx),
            None,
        )
        .unwrap();
        assert_eq!(e.message, "m=PUT");
        assert_eq!(e.line(), "shop [error] m=PUT k=v m=put");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["metadata"]["k"], "v");
        assert_eq!(json["metadata"]["m"], "put");
        let failed = event(
            &spec("{source: s, message: '@(int.Parse(\"x\"))'}"),
            &Facts::of(&ctx),
            None,
        )
        .unwrap_err();
        assert_eq!(failed.status(), 500);
    }
}
