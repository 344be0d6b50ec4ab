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
    LIQUID.parse(&filter_names(text)).map_err(|e| {
        let text = e.to_string();
        let one: Vec<&str> = text.split_whitespace().collect();
        format!("Liquid template: {}", one.join(" "))
    })
}

/// APIM's Liquid (DotLiquid) names filters in C#'s case (`Replace`,
/// `Default`, `DividedBy`); the `liquid` crate in Shopify's (`replace`,
/// `default`, `divided_by`). A filter name after `|` inside `{{ }}` or
/// `{% %}` that starts with a capital is written the crate's way; text
/// outside tags is left as it is.
fn filter_names(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('|') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut in_tag = false;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        out.push(c);
        let next = text[i + c.len_utf8()..].chars().next();
        match (c, next) {
            ('{', Some('{' | '%')) if !in_tag => in_tag = true,
            ('}' | '%', Some('}')) if in_tag => in_tag = false,
            ('|', _) if in_tag => {
                while let Some((_, ' ')) = chars.peek() {
                    out.push(' ');
                    chars.next();
                }
                let start = chars.peek().map_or(text.len(), |(j, _)| *j);
                let len = text[start..]
                    .find(|c: char| !c.is_ascii_alphanumeric())
                    .unwrap_or(text.len() - start);
                let name = &text[start..start + len];
                if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                    out.push_str(&snake_case(name));
                    for _ in 0..name.chars().count() {
                        chars.next();
                    }
                }
            }
            _ => {}
        }
    }
    out.into()
}

/// `DividedBy` -> `divided_by`; DotLiquid's `TruncateWords` is the
/// crate's `truncatewords`.
fn snake_case(name: &str) -> String {
    if name == "TruncateWords" {
        return "truncatewords".into();
    }
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotliquid_filter_names_become_the_crate_s() {
        for (apim, crate_form) in [
            (
                "{{ body.a | Replace: 'x', 'y' }}",
                "{{ body.a | replace: 'x', 'y' }}",
            ),
            (
                "{{ n | DividedBy: 2 | Default: 0 }}|Keep",
                "{{ n | divided_by: 2 | default: 0 }}|Keep",
            ),
            ("{% assign t = s |Upcase %}", "{% assign t = s |upcase %}"),
            ("{{ s | TruncateWords: 3 }}", "{{ s | truncatewords: 3 }}"),
            (
                "{{ s | upcase }} A | Replace",
                "{{ s | upcase }} A | Replace",
            ),
            ("no tags | Here", "no tags | Here"),
        ] {
            assert_eq!(filter_names(apim), crate_form, "{apim}");
        }
        let t = liquid("{{ 'a-b' | Replace: '-', '+' | Upcase }}").unwrap();
        assert_eq!(t.render(&liquid::Object::new()).unwrap(), "A+B");
    }

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
