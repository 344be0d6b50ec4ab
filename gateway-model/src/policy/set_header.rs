//! `set-header`: sets, appends, skips or deletes a request header
//! (inbound) or response header (outbound, on-error).

use http::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_yaml::Value;

use super::expr::Text;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Header name.
    name: String,
    /// Value (named values are substituted), or a policy expression; not
    /// needed for "delete".
    #[serde(default, deserialize_with = "super::expr::text")]
    value: Option<Text>,
    /// "override" (default), "skip" (only when absent), "append", "delete".
    #[serde(default)]
    exists_action: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Override,
    Skip,
    Append,
    Delete,
}

#[derive(Clone, PartialEq)]
pub struct SetHeaderSpec {
    pub name: HeaderName,
    /// `None` for `Delete` and for a value computed by `expression`.
    pub value: Option<HeaderValue>,
    /// The value, computed per request.
    pub expression: Option<std::sync::Arc<edgegw_policy_expr::Expression>>,
    pub action: Action,
}

// The value may come from a secret named value: never shown.
impl std::fmt::Debug for SetHeaderSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SetHeader({}, {:?})", self.name, self.action)
    }
}

impl SetHeaderSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let name = HeaderName::from_bytes(f.name.as_bytes())
            .map_err(|_| format!("\"{}\" is not a valid header name", f.name))?;
        let action = match f.exists_action.as_deref() {
            None | Some("override") => Action::Override,
            Some("skip") => Action::Skip,
            Some("append") => Action::Append,
            Some("delete") => Action::Delete,
            Some(other) => {
                return Err(format!(
                    "exists_action \"{other}\" is unknown; use override, skip, append or delete"
                ));
            }
        };
        let mut expression = None;
        let value =
            match (f.value, action) {
                (_, Action::Delete) => None,
                (None, _) => return Err("value is required unless exists_action is delete".into()),
                (Some(Text::Expr(e)), _) => {
                    expression = Some(e);
                    None
                }
                (Some(Text::Literal(v)), _) => Some(HeaderValue::from_str(&v).map_err(|_| {
                    format!("value of header \"{}\" is not valid in a header", f.name)
                })?),
            };
        Ok(SetHeaderSpec {
            name,
            value,
            expression,
            action,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_settings() {
        for bad in [
            "{name: X-A}",
            "{name: 'bad name', value: v}",
            "{name: X-A, value: v, exists_action: replace}",
            "{name: X-A, valeu: v}",
        ] {
            assert!(
                SetHeaderSpec::parse(serde_yaml::from_str(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }
}
