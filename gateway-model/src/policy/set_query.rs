//! `set-query-parameter`: sets, appends, skips or deletes a query parameter
//! of the request sent to the backend.

use serde::Deserialize;
use serde_yaml::Value;

use super::expr::Text;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Parameter name.
    name: String,
    /// Value (encoded for the URL by the gateway), or a policy expression
    /// evaluated per request; not needed for "delete".
    #[serde(default, deserialize_with = "super::expr::text")]
    value: Option<Text>,
    /// "override" (default), "skip", "append", "delete".
    #[serde(default)]
    exists_action: Option<String>,
}

#[derive(Clone, PartialEq)]
pub struct SetQuerySpec {
    pub name: String,
    /// As written (not yet encoded) or an expression; `None` only for
    /// "delete".
    pub value: Option<Text>,
    /// "override", "skip", "append" or "delete".
    pub action: String,
}

// The value may come from a secret named value: never shown.
impl std::fmt::Debug for SetQuerySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SetQuery({}, {})", self.name, self.action)
    }
}

impl SetQuerySpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        if f.name.is_empty() {
            return Err("name is empty".into());
        }
        let action = f.exists_action.unwrap_or_else(|| "override".into());
        if !["override", "skip", "append", "delete"].contains(&action.as_str()) {
            return Err(format!(
                "exists_action \"{action}\" is unknown; use override, skip, append or delete"
            ));
        }
        if f.value.is_none() && action != "delete" {
            return Err("value is required unless exists_action is delete".into());
        }
        Ok(SetQuerySpec {
            name: f.name,
            value: f.value,
            action,
        })
    }
}
