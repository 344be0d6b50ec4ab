//! `set-header`: sets, appends, skips or deletes a request header
//! (inbound) or response header (outbound, on-error).

use hyper::{
    HeaderMap,
    header::{HeaderName, HeaderValue},
};
use serde::Deserialize;
use serde_yaml::Value;

use super::per_thread::PerThread;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Header name.
    name: String,
    /// Value (named values are substituted); not needed for "delete".
    #[serde(default, deserialize_with = "super::parse::scalar")]
    value: Option<String>,
    /// "override" (default), "skip" (only when absent), "append", "delete".
    #[serde(default)]
    exists_action: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Override,
    Skip,
    Append,
    Delete,
}

pub struct SetHeader {
    name: PerThread<HeaderName>,
    value: Option<PerThread<HeaderValue>>,
    action: Action,
}

// The value may come from a secret named value: never shown.
impl std::fmt::Debug for SetHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SetHeader({}, {:?})", *self.name, self.action)
    }
}

impl SetHeader {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = serde_yaml::from_value(args).map_err(|e| e.to_string())?;
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
        let value =
            match (&f.value, action) {
                (_, Action::Delete) => None,
                (None, _) => return Err("value is required unless exists_action is delete".into()),
                (Some(v), _) => Some(HeaderValue::from_str(v).map_err(|_| {
                    format!("value of header \"{}\" is not valid in a header", f.name)
                })?),
            };
        Ok(SetHeader {
            name: PerThread::new(name),
            value: value.map(PerThread::new),
            action,
        })
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        let name = self.name.get();
        match (&self.value, self.action) {
            (_, Action::Delete) | (None, _) => {
                headers.remove(name);
            }
            (Some(v), Action::Override) => {
                headers.insert(name.clone(), v.get().clone());
            }
            (Some(v), Action::Append) => {
                headers.append(name.clone(), v.get().clone());
            }
            (Some(v), Action::Skip) => {
                if !headers.contains_key(name) {
                    headers.insert(name.clone(), v.get().clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(args: &str, headers: &mut HeaderMap) {
        SetHeader::parse(serde_yaml::from_str(args).unwrap())
            .unwrap()
            .apply(headers);
    }

    #[test]
    fn each_exists_action() {
        let mut h = HeaderMap::new();
        h.insert("x-a", "old".parse().unwrap());
        apply("{name: X-A, value: skip, exists_action: skip}", &mut h);
        assert_eq!(h["x-a"], "old");
        apply("{name: X-A, value: new}", &mut h);
        assert_eq!(h["x-a"], "new");
        apply("{name: X-A, value: two, exists_action: append}", &mut h);
        assert_eq!(h.get_all("x-a").iter().count(), 2);
        apply("{name: X-A, exists_action: delete}", &mut h);
        assert!(h.is_empty());
        apply("{name: X-B, value: b, exists_action: skip}", &mut h);
        assert_eq!(h["x-b"], "b");
    }

    #[test]
    fn rejects_bad_settings() {
        for bad in [
            "{name: X-A}",
            "{name: 'bad name', value: v}",
            "{name: X-A, value: v, exists_action: replace}",
            "{name: X-A, valeu: v}",
        ] {
            assert!(
                SetHeader::parse(serde_yaml::from_str(bad).unwrap()).is_err(),
                "{bad}"
            );
        }
    }
}
