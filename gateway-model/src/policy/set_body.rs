//! `set-body`: replaces the request body (inbound) or the response body
//! (outbound, on-error) with literal text, a policy expression's value, or
//! a Liquid template (`template: liquid`) rendered with APIM's Liquid
//! context (`context.Request...`, `body.field`). Templates and
//! expressions are parsed here, once, when the policy is loaded.

use std::sync::{Arc, LazyLock};

use serde::Deserialize;
use serde_yaml::Value;

use super::expr::Text;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The new body: literal text, a policy expression, or a Liquid
    /// template.
    #[serde(default)]
    value: Option<Value>,
    /// `liquid`: `value` is a Liquid template.
    #[serde(default)]
    template: Option<String>,
}

/// Where the new body comes from.
#[derive(Clone)]
pub enum Body {
    Literal(String),
    Expr(Arc<edgegw_policy_expr::Expression>),
    Liquid(Arc<liquid::Template>),
}

#[derive(Clone)]
pub struct SetBodySpec {
    pub body: Body,
    /// Whether making it reads the current body (then the gateway
    /// buffers it): a template (`body.x`), or an expression naming a
    /// `Body`.
    pub reads_body: bool,
}

impl std::fmt::Debug for SetBodySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.body {
            Body::Literal(_) => "literal",
            Body::Expr(_) => "expression",
            Body::Liquid(_) => "liquid",
        };
        write!(f, "SetBody({kind})")
    }
}

static LIQUID: LazyLock<liquid::Parser> = LazyLock::new(|| {
    liquid::ParserBuilder::with_stdlib()
        .build()
        .expect("the standard library's tags and filters register")
});

impl SetBodySpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let value = f
            .value
            .ok_or("value is required: the new body (text, @(...) or a Liquid template)")?;
        let (body, reads_body) = match f.template.as_deref() {
            None => match super::expr::text_of(&value, None)? {
                Text::Literal(l) => (Body::Literal(l), false),
                Text::Expr(e) => {
                    let reads = e.source().contains("Body");
                    (Body::Expr(e), reads)
                }
            },
            Some("liquid") => {
                let Value::String(text) = value else {
                    return Err("value: a Liquid template is text".into());
                };
                (Body::Liquid(Arc::new(liquid(&text)?)), true)
            }
            Some(other) => {
                return Err(format!(
                    "template \"{other}\" is unknown; the only template is liquid"
                ));
            }
        };
        Ok(SetBodySpec { body, reads_body })
    }
}

/// A Liquid template, parsed; its error on one line.
pub fn liquid(text: &str) -> Result<liquid::Template, String> {
    LIQUID.parse(text).map_err(|e| {
        let text = e.to_string();
        let one: Vec<&str> = text.split_whitespace().collect();
        format!("Liquid template: {}", one.join(" "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SetBodySpec, String> {
        SetBodySpec::parse(serde_yaml::from_str(s).unwrap())
    }

    #[test]
    fn literal_expression_template_and_refusals() {
        let s = parse("{value: hello}").unwrap();
        assert!(matches!(s.body, Body::Literal(ref l) if l == "hello") && !s.reads_body);
        let s = parse("{value: '@(context.Request.Body.As<string>().ToUpper())'}").unwrap();
        assert!(matches!(s.body, Body::Expr(_)) && s.reads_body);
        let s = parse("{value: '@(context.Request.Method)'}").unwrap();
        assert!(!s.reads_body);
        let s = parse("{template: liquid, value: '{\"n\": \"{{body.name}}\"}'}").unwrap();
        assert!(matches!(s.body, Body::Liquid(_)) && s.reads_body);
        let e = parse("{template: liquid, value: '{% if x %}open'}").unwrap_err();
        assert!(
            e.starts_with("Liquid template: ") && !e.contains('\n'),
            "{e}"
        );
        assert!(
            parse("{template: mustache, value: x}")
                .unwrap_err()
                .contains("only template is liquid")
        );
        assert!(parse("{}").unwrap_err().contains("value is required"));
        assert!(
            parse("{value: '@(context.Request.Method > 3)'}")
                .unwrap_err()
                .contains("cannot compare")
        );
        assert!(
            parse("{value: x, other: 1}")
                .unwrap_err()
                .contains("unknown field")
        );
    }
}
