//! `set-query-parameter`: sets, appends, skips or deletes a query parameter
//! of the request sent to the backend.

use serde::Deserialize;
use serde_yaml::Value;

use super::context::{Query, percent_encode};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Parameter name.
    name: String,
    /// Value (encoded for the URL by the gateway); not needed for "delete".
    #[serde(default, deserialize_with = "super::parse::scalar")]
    value: Option<String>,
    /// "override" (default), "skip", "append", "delete".
    #[serde(default)]
    exists_action: Option<String>,
}

pub struct SetQuery {
    name: String,
    value: Option<String>,
    action: String,
}

impl std::fmt::Debug for SetQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SetQuery({}, {})", self.name, self.action)
    }
}

impl SetQuery {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = serde_yaml::from_value(args).map_err(|e| e.to_string())?;
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
        Ok(SetQuery {
            name: f.name,
            value: f.value.map(|v| percent_encode(&v)),
            action,
        })
    }

    pub fn apply(&self, query: &mut Query) {
        let present = query.get(&self.name).is_some();
        let pair = || (percent_encode(&self.name), self.value.clone());
        match self.action.as_str() {
            "delete" => query.remove(&self.name),
            "skip" if present => {}
            "append" => query.0.push(pair()),
            _ => {
                query.remove(&self.name);
                query.0.push(pair());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(args: &str, q: &str) -> String {
        let mut query = Query::parse(Some(q));
        SetQuery::parse(serde_yaml::from_str(args).unwrap())
            .unwrap()
            .apply(&mut query);
        query.to_suffix()
    }

    #[test]
    fn each_exists_action() {
        assert_eq!(apply("{name: v, value: 'a b'}", "v=1&x=2"), "?x=2&v=a%20b");
        assert_eq!(
            apply("{name: v, value: 2, exists_action: skip}", "v=1"),
            "?v=1"
        );
        assert_eq!(
            apply("{name: v, value: 2, exists_action: skip}", ""),
            "?v=2"
        );
        assert_eq!(
            apply("{name: v, value: 2, exists_action: append}", "v=1"),
            "?v=1&v=2"
        );
        assert_eq!(apply("{name: v, exists_action: delete}", "v=1&w"), "?w");
        assert!(SetQuery::parse(serde_yaml::from_str("{name: v}").unwrap()).is_err());
    }
}
