//! Settings that may be APIM policy expressions (`@(...)`, `@{...}`):
//! parsed and type-checked once here, when the policy is loaded, and
//! evaluated per request by the gateway.
//!
//! In YAML an expression is a string starting with `@(` or `@{`; the XML
//! translator (`crate::apim`) passes `{"@expression": text, line, column}`
//! so that refusals point into the XML document.

use std::sync::Arc;

use edgegw_policy_expr::{Expression, Ty, is_expression};
use serde_yaml::{Mapping, Value};

const KEY: &str = "@expression";

/// A text setting: written as is, or computed per request.
#[derive(Clone, Debug, PartialEq)]
pub enum Text {
    Literal(String),
    Expr(Arc<Expression>),
}

impl Text {
    pub fn is_expression(&self) -> bool {
        matches!(self, Text::Expr(_))
    }
}

/// The settings value of an expression found at `line`/`column` of a
/// document.
pub fn located(text: &str, line: u32, column: u32) -> Value {
    let mut map = Mapping::new();
    map.insert(KEY.into(), text.into());
    map.insert("line".into(), line.into());
    map.insert("column".into(), column.into());
    Value::Mapping(map)
}

/// Reads a settings value as a literal or an expression; an expression
/// must be of type `want` when given (`None`: any type, shown as text).
pub fn text_of(value: &Value, want: Option<&Ty>) -> Result<Text, String> {
    let (text, line, column) = match value {
        Value::String(s) if is_expression(s) => (s.as_str(), 1, 1),
        Value::String(s) => return Ok(Text::Literal(s.clone())),
        Value::Number(n) => return Ok(Text::Literal(n.to_string())),
        Value::Bool(b) => return Ok(Text::Literal(b.to_string())),
        Value::Mapping(m) if m.contains_key(KEY) => {
            let n = |k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(1) as u32;
            (m[KEY].as_str().unwrap_or_default(), n("line"), n("column"))
        }
        _ => return Err("expected text, a number or a policy expression".into()),
    };
    let e = Expression::parse_at(text, line, column).map_err(|e| e.to_string())?;
    if let Some(want) = want
        && e.ty() != want
    {
        return Err(format!(
            "line {line}, column {column}: `{}`: the expression is of type {}, here it must be {want}",
            e.source(),
            e.ty()
        ));
    }
    Ok(Text::Expr(Arc::new(e)))
}

/// Serde helper: an optional text setting that may be an expression.
pub(crate) fn text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Text>, D::Error> {
    use serde::{Deserialize, de::Error};
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => text_of(&v, None).map(Some).map_err(D::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_expressions_and_refusals() {
        assert_eq!(
            text_of(&"plain".into(), None).unwrap(),
            Text::Literal("plain".into())
        );
        assert!(
            text_of(&"@(context.Subscription.Id)".into(), None)
                .unwrap()
                .is_expression()
        );
        let e = text_of(&located("@(context.Request.Method > 3)", 7, 20), None).unwrap_err();
        assert!(e.starts_with("line 7, column"), "{e}");
        let e = text_of(&"@(1 + 1)".into(), Some(&Ty::Bool)).unwrap_err();
        assert!(e.contains("must be bool"), "{e}");
    }
}
