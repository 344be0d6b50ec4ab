//! A change of a gateway's bundle that touches only its subscriptions, as
//! the control plane serves it to a gateway that holds version `from`
//! (`docs/sync-protocol.md`, "Subscription changes"). Subscriptions are
//! what a control plane writes most often and a catalog holds most of:
//! applying only the change swaps one index instead of re-reading and
//! rebuilding the whole configuration.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::value::{RawValue, to_raw_value};

use super::ConfigError;
use crate::catalog::file::SubscriptionFile;

/// Content type of a served delta (a whole bundle is `application/json`).
pub const DELTA_CONTENT_TYPE: &str = "application/vnd.edgegw.bundle-delta+json";

const ORIGIN: &str = "control plane configuration change";

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BundleDelta {
    /// The version this change applies to.
    pub from: u64,
    /// The version it makes.
    pub version: u64,
    /// Subscriptions added or replaced, by id.
    #[serde(default)]
    pub upsert: Vec<SubscriptionFile>,
    /// Ids of subscriptions removed.
    #[serde(default)]
    pub delete: Vec<String>,
}

impl BundleDelta {
    pub fn parse(text: &str) -> Result<BundleDelta, ConfigError> {
        serde_json::from_str(text).map_err(|e| ConfigError::Parse {
            path: ORIGIN.into(),
            message: e.to_string(),
        })
    }

    /// What turns the subscriptions `old` into `new` (by id).
    pub fn between(
        from: u64,
        version: u64,
        old: &[SubscriptionFile],
        new: &[SubscriptionFile],
    ) -> BundleDelta {
        let before: HashMap<&str, &SubscriptionFile> =
            old.iter().map(|s| (s.id.as_str(), s)).collect();
        let after: HashSet<&str> = new.iter().map(|s| s.id.as_str()).collect();
        BundleDelta {
            from,
            version,
            upsert: new
                .iter()
                .filter(|s| before.get(s.id.as_str()) != Some(s))
                .cloned()
                .collect(),
            delete: old
                .iter()
                .filter(|s| !after.contains(s.id.as_str()))
                .map(|s| s.id.clone())
                .collect(),
        }
    }

    /// The whole bundle at `version`: `text`, the bundle at `from`, with
    /// the change applied to its catalog's subscriptions (kept in id
    /// order, as the control plane lists them). Everything else is copied
    /// as raw text, never built into a tree (a catalog of 100,000
    /// subscriptions is 12 MB); object keys come out sorted.
    pub fn apply_to_text(&self, text: &str) -> Result<String, ConfigError> {
        type Raw = Box<RawValue>;
        #[derive(Deserialize)]
        struct Id<'a> {
            #[serde(borrow)]
            id: std::borrow::Cow<'a, str>,
        }
        let invalid = |message: String| ConfigError::Invalid {
            path: ORIGIN.into(),
            message,
        };
        let json = |e: serde_json::Error| invalid(e.to_string());
        let mut bundle: BTreeMap<String, Raw> = serde_json::from_str(text).map_err(json)?;
        let version: u64 = match bundle.get("version") {
            Some(v) => serde_json::from_str(v.get()).map_err(json)?,
            None => 0,
        };
        if version != self.from {
            return Err(invalid(format!(
                "it applies to version {}, not to version {version}",
                self.from
            )));
        }
        let mut catalog: BTreeMap<String, Raw> = match bundle.get("catalog") {
            Some(c) => serde_json::from_str(c.get()).map_err(json)?,
            None => return Err(invalid("the bundle has no catalog".into())),
        };
        let mut list: Vec<Raw> = match catalog.get("subscriptions") {
            Some(l) => serde_json::from_str(l.get()).map_err(json)?,
            None => Vec::new(),
        };
        let id_of = |raw: &Raw| -> Result<String, ConfigError> {
            Ok(serde_json::from_str::<Id>(raw.get())
                .map_err(json)?
                .id
                .into_owned())
        };
        let replaced: HashSet<&str> = self
            .upsert
            .iter()
            .map(|s| s.id.as_str())
            .chain(self.delete.iter().map(String::as_str))
            .collect();
        let mut ids = Vec::with_capacity(list.len());
        for raw in &list {
            ids.push(id_of(raw)?);
        }
        let mut kept = ids.iter().map(|id| !replaced.contains(id.as_str()));
        list.retain(|_| kept.next().unwrap_or(false));
        ids.retain(|id| !replaced.contains(id.as_str()));
        for s in &self.upsert {
            let at = ids.partition_point(|id| id.as_str() < s.id.as_str());
            ids.insert(at, s.id.clone());
            list.insert(at, to_raw_value(s).map_err(json)?);
        }
        catalog.insert("subscriptions".into(), to_raw_value(&list).map_err(json)?);
        bundle.insert("catalog".into(), to_raw_value(&catalog).map_err(json)?);
        bundle.insert("version".into(), to_raw_value(&self.version).map_err(json)?);
        serde_json::to_string(&bundle).map_err(json)
    }

    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty() && self.delete.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn sub(id: &str, key: &str) -> SubscriptionFile {
        SubscriptionFile {
            id: id.into(),
            scope: "all".into(),
            primary_key_sha256: key.into(),
            secondary_key_sha256: None,
            state: None,
        }
    }

    #[test]
    fn between_then_apply_gives_the_new_list() {
        let old = vec![sub("a", "1"), sub("b", "2"), sub("c", "3")];
        let new = vec![sub("a", "1"), sub("b", "9"), sub("d", "4")];
        let delta = BundleDelta::between(7, 9, &old, &new);
        assert_eq!(delta.upsert, vec![sub("b", "9"), sub("d", "4")]);
        assert_eq!(delta.delete, vec!["c".to_string()]);
        let bundle = serde_json::json!({"version": 7, "catalog": {"subscriptions": old}});
        let patched: Value =
            serde_json::from_str(&delta.apply_to_text(&bundle.to_string()).unwrap()).unwrap();
        assert_eq!(patched["version"], 9);
        assert_eq!(
            patched["catalog"]["subscriptions"],
            serde_json::to_value(&new).unwrap()
        );
        assert!(BundleDelta::between(1, 2, &new, &new).is_empty());
    }

    #[test]
    fn apply_refuses_another_version() {
        let delta = BundleDelta {
            from: 3,
            version: 4,
            ..BundleDelta::default()
        };
        let e = delta
            .apply_to_text(r#"{"version": 2, "catalog": {}}"#)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("applies to version 3, not to version 2"),
            "{e}"
        );
    }
}
