//! `find-and-replace`: replaces every occurrence of a string in the
//! request body (inbound) or the response body (outbound, on-error).
//! The body is buffered for it (up to the gateway's body limit).

use serde::Deserialize;
use serde_yaml::Value;

use super::expr::Text;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The text to find (literal, or a policy expression).
    #[serde(default, deserialize_with = "super::expr::text")]
    from: Option<Text>,
    /// What replaces it; empty removes it.
    #[serde(default, deserialize_with = "super::expr::text")]
    to: Option<Text>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FindAndReplaceSpec {
    pub from: Text,
    pub to: Text,
}

impl FindAndReplaceSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let from = f.from.ok_or("from is required: the text to find")?;
        if from == Text::Literal(String::new()) {
            return Err("from is empty; give the text to find".into());
        }
        let to =
            f.to.ok_or("to is required: the replacement (\"\" removes the text)")?;
        Ok(FindAndReplaceSpec { from, to })
    }

    pub fn uses_expressions(&self) -> bool {
        self.from.is_expression() || self.to.is_expression()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<FindAndReplaceSpec, String> {
        FindAndReplaceSpec::parse(serde_yaml::from_str(s).unwrap())
    }

    #[test]
    fn settings_and_refusals() {
        let s = parse("{from: sad, to: ''}").unwrap();
        assert_eq!(s.to, Text::Literal(String::new()));
        assert!(
            parse("{from: a, to: '@(context.Request.Method)'}")
                .unwrap()
                .uses_expressions()
        );
        assert!(parse("{to: x}").unwrap_err().contains("from is required"));
        assert!(
            parse("{from: '', to: x}")
                .unwrap_err()
                .contains("from is empty")
        );
        assert!(parse("{from: a}").unwrap_err().contains("to is required"));
        assert!(
            parse("{from: a, to: b, c: d}")
                .unwrap_err()
                .contains("unknown field")
        );
    }
}
