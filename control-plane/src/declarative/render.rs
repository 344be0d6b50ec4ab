//! Documents as export writes them: the same state gives the same bytes.
//! Keys are sorted at every level, with the resource's name (`id`) first;
//! lists keep their order (policies run in it). Secret named values are
//! written as a reference (`value_from: {env: ...}`), never as a value.

use serde_json::{Map, Value, json};

use super::secret_env;
use crate::store::Kind;

/// The YAML text of a stored document of `kind`, as shown by the API.
pub fn file_text(kind: Kind, mut doc: Value) -> String {
    if kind == Kind::NamedValue
        && doc.get("secret") == Some(&Value::Bool(true))
        && let Value::Object(map) = &mut doc
    {
        let name = map
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        map.remove("value");
        map.insert("value_from".into(), json!({"env": secret_env(&name)}));
    }
    let sorted = sort(doc, (!kind.singleton()).then(|| kind.key()));
    serde_yaml::to_string(&sorted).expect("JSON values serialise as YAML")
}

/// `value` with sorted keys; `first` leads the top level.
fn sort(value: Value, first: Option<&str>) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|(a, _), (b, _)| {
                let lead = |k: &str| Some(k) != first;
                (lead(a), a).cmp(&(lead(b), b))
            });
            let mut out = Map::new();
            for (k, v) in entries {
                out.insert(k, sort(v, None));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|v| sort(v, None)).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_document_in_any_order_gives_the_same_text() {
        let a = json!({"path": "/o", "name": "orders", "backend": "b",
                       "operations": [{"url": "/x", "name": "x", "method": "GET"}]});
        let b = json!({"operations": [{"method": "GET", "name": "x", "url": "/x"}],
                       "backend": "b", "name": "orders", "path": "/o"});
        let text = file_text(Kind::Api, a);
        assert_eq!(text, file_text(Kind::Api, b));
        assert!(text.starts_with("name: orders\nbackend: b\n"), "{text}");
    }

    #[test]
    fn secrets_are_references() {
        let text = file_text(
            Kind::NamedValue,
            json!({"name": "backend-token", "secret": true, "value": "s3cr3t"}),
        );
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("env: EDGEGW_SECRET_BACKEND_TOKEN"), "{text}");
    }
}
