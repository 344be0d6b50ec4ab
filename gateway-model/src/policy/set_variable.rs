//! `set-variable`: keeps a value under a name for the rest of the request
//! (`context.Variables` in policy expressions). The value is literal text
//! or an expression, computed when the policy runs.

use serde::Deserialize;
use serde_yaml::Value;

use super::expr::Text;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The variable's name.
    name: String,
    /// Literal text, or a policy expression of any type.
    #[serde(default, deserialize_with = "super::expr::text")]
    value: Option<Text>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SetVariableSpec {
    pub name: String,
    pub value: Text,
}

impl SetVariableSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        if f.name.trim().is_empty() {
            return Err("name is empty; give the variable's name".into());
        }
        let value = f.value.ok_or("value is required: literal text or @(...)")?;
        Ok(SetVariableSpec {
            name: f.name,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SetVariableSpec, String> {
        SetVariableSpec::parse(serde_yaml::from_str(s).unwrap())
    }

    #[test]
    fn literal_expression_and_refusals() {
        assert_eq!(
            parse("{name: a, value: 3}").unwrap().value,
            Text::Literal("3".into())
        );
        assert!(
            parse("{name: a, value: '@(context.Request.Method)'}")
                .unwrap()
                .value
                .is_expression()
        );
        assert!(
            parse("{name: a}")
                .unwrap_err()
                .contains("value is required")
        );
        assert!(
            parse("{name: '', value: x}")
                .unwrap_err()
                .contains("name is empty")
        );
        assert!(
            parse("{name: a, value: x, other: 1}")
                .unwrap_err()
                .contains("unknown field")
        );
        let e = parse("{name: a, value: '@(context.Request.Method > 3)'}").unwrap_err();
        assert!(e.contains("cannot compare"), "{e}");
    }
}
