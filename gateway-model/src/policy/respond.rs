//! `return-response` / `mock-response` (answer without the backend) and
//! `set-status` (change the response's status). The answer's body may be
//! made per request as `set-body`'s (an expression or a Liquid template)
//! and its header values may be expressions.

use std::{collections::BTreeMap, sync::Arc};

use edgegw_policy_expr::Expression;
use http::{
    HeaderMap, StatusCode,
    header::{HeaderName, HeaderValue},
};
use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::{
    expr::Text,
    set_body::{Body, SetBodySpec},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnFile {
    /// Status code (default 200).
    #[serde(default = "ok")]
    status_code: u16,
    /// Content-Type of the body.
    #[serde(default = "json")]
    content_type: String,
    /// The body: text, a policy expression, or (with `body_template:
    /// liquid`) a Liquid template.
    #[serde(default)]
    body: Option<Value>,
    /// `liquid`: `body` is a Liquid template.
    #[serde(default)]
    body_template: Option<String>,
    /// Extra response headers: text or a policy expression each.
    #[serde(default)]
    headers: BTreeMap<String, Value>,
}

fn ok() -> u16 {
    200
}

fn json() -> String {
    "application/json".into()
}

#[derive(Clone, Debug)]
pub struct ReturnResponseSpec {
    pub status: StatusCode,
    pub content_type: String,
    /// The body when it is text as written.
    pub body: String,
    /// The body when it is made per request.
    pub made_body: Option<SetBodySpec>,
    /// Headers with values as written.
    pub headers: HeaderMap,
    /// Headers whose values are expressions, set after the others.
    pub header_expressions: Vec<(HeaderName, Arc<Expression>)>,
}

impl ReturnResponseSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: ReturnFile = super::settings(args)?;
        let (body, made_body) = match (f.body, f.body_template) {
            (None, None) => (String::new(), None),
            (None, Some(_)) => return Err("body_template needs a body".into()),
            (Some(value), template) => {
                let mut args = Mapping::new();
                args.insert("value".into(), value);
                if let Some(t) = template {
                    args.insert("template".into(), t.into());
                }
                let made =
                    SetBodySpec::parse(Value::Mapping(args)).map_err(|e| format!("body: {e}"))?;
                match made.body {
                    Body::Literal(text) => (text, None),
                    _ => (String::new(), Some(made)),
                }
            }
        };
        let mut headers = HeaderMap::new();
        let mut header_expressions = Vec::new();
        for (name, value) in &f.headers {
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("\"{name}\" is not a valid header name"))?;
            match super::expr::text_of(value, None)
                .map_err(|e| format!("header \"{name}\": {e}"))?
            {
                Text::Literal(v) => {
                    let v = HeaderValue::from_str(&v).map_err(|_| {
                        format!("header \"{name}\": value is not valid in a header")
                    })?;
                    headers.append(n, v);
                }
                Text::Expr(e) => header_expressions.push((n, e)),
            }
        }
        Ok(ReturnResponseSpec {
            status: super::status(f.status_code)?,
            content_type: f.content_type,
            body,
            made_body,
            headers,
            header_expressions,
        })
    }

    /// Whether making the answer evaluates an expression or a template.
    pub fn uses_expressions(&self) -> bool {
        self.made_body.is_some() || !self.header_expressions.is_empty()
    }

    /// Whether making the body reads the current body.
    pub fn reads_body(&self) -> bool {
        self.made_body.as_ref().is_some_and(|b| b.reads_body)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetStatusFile {
    /// The new status code.
    code: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetStatusSpec(pub StatusCode);

impl SetStatusSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: SetStatusFile = super::settings(args)?;
        Ok(SetStatusSpec(super::status(f.code)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_statuses_and_settings_are_refused() {
        let parse = |s: &str| ReturnResponseSpec::parse(serde_yaml::from_str(s).unwrap());
        assert!(parse("{status_code: 99}").is_err());
        assert!(parse("{statuscode: 200}").is_err());
        assert!(parse("{headers: {'bad name': x}}").is_err());
        assert!(parse("{body_template: liquid}").is_err());
        assert!(
            parse("{body: '@(context.Nope)'}")
                .unwrap_err()
                .starts_with("body: ")
        );
        assert!(
            parse("{headers: {x-a: '@(1 +)'}}")
                .unwrap_err()
                .contains("header \"x-a\"")
        );
    }

    #[test]
    fn bodies_and_header_values_may_be_made_per_request() {
        let parse = |s: &str| ReturnResponseSpec::parse(serde_yaml::from_str(s).unwrap()).unwrap();
        let literal = parse("{body: tea, headers: {x-a: b}}");
        assert_eq!(literal.body, "tea");
        assert!(!literal.uses_expressions() && literal.headers["x-a"] == "b");
        let made = parse(
            "{body: '@(context.Request.Method)', headers: {x-b: '@(context.RequestId.ToString())'}}",
        );
        assert!(made.uses_expressions() && !made.reads_body());
        assert_eq!(made.header_expressions.len(), 1);
        assert!(parse("{body: '@(context.Request.Body.As<string>())'}").reads_body());
        assert!(
            parse("{body: 'Hello {{context.Request.Method}}', body_template: liquid}")
                .uses_expressions()
        );
        assert!(SetStatusSpec::parse(serde_yaml::from_str("{code: 1000}").unwrap()).is_err());
    }
}
