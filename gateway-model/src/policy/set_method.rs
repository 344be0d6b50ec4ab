//! `set-method`: the method of the request sent to the backend (inbound).
//! A literal is checked here; an expression's value when the policy runs.

use serde::Deserialize;
use serde_yaml::Value;

use super::expr::Text;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The method (`POST`), or a policy expression giving it.
    #[serde(default, deserialize_with = "super::expr::text")]
    method: Option<Text>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SetMethodSpec {
    Literal(http::Method),
    Expr(std::sync::Arc<edgegw_policy_expr::Expression>),
}

impl SetMethodSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        match f.method {
            None => Err("method is required, e.g. method: POST".into()),
            Some(Text::Expr(e)) => Ok(SetMethodSpec::Expr(e)),
            Some(Text::Literal(m)) => method(&m).map(SetMethodSpec::Literal),
        }
    }
}

/// A method token as sent on the wire; upper case as written by APIM
/// documents (`post` is taken as `POST`).
pub fn method(text: &str) -> Result<http::Method, String> {
    let upper = text.trim().to_ascii_uppercase();
    if upper.is_empty() {
        return Err("method is empty; give one, e.g. POST".into());
    }
    http::Method::from_bytes(upper.as_bytes())
        .map_err(|_| format!("\"{text}\" is not an HTTP method; write e.g. GET, POST, PUT"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SetMethodSpec, String> {
        SetMethodSpec::parse(serde_yaml::from_str(s).unwrap())
    }

    #[test]
    fn literals_expressions_and_refusals() {
        assert_eq!(
            parse("{method: post}").unwrap(),
            SetMethodSpec::Literal(http::Method::POST)
        );
        assert!(matches!(
            parse("{method: '@(context.Request.Headers.GetValueOrDefault(\"x-m\", \"GET\"))'}"),
            Ok(SetMethodSpec::Expr(_))
        ));
        assert!(parse("{}").unwrap_err().contains("method is required"));
        assert!(
            parse("{method: 'P O'}")
                .unwrap_err()
                .contains("not an HTTP method")
        );
        assert!(
            parse("{method: GET, x: 1}")
                .unwrap_err()
                .contains("unknown field")
        );
    }
}
