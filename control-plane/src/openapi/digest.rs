//! The readable part of an imported OpenAPI document, kept for the docs
//! pages of the console and the portal: the title, version and
//! description, and per operation its method, path, id, summary and
//! description. Read in a second pass over the text (the import's own
//! pass skips descriptions unread); everything else stays unread. The
//! text is stored as it is: the pages render it as text, never as markup.

use serde::Deserialize;
use serde_json::{Value, json};

use super::document::{METHODS, Ordered, Scalar};
use gateway_model::config::yaml;

/// Longest description kept, in characters (a longer one is cut, marked).
const MAX_TEXT: usize = 32 * 1024;

#[derive(Debug, Default, Deserialize)]
struct Text {
    #[serde(default)]
    info: Option<Info>,
    #[serde(default)]
    paths: Option<Ordered<PathText>>,
}

#[derive(Debug, Default, Deserialize)]
struct Info {
    #[serde(default)]
    title: Option<Scalar>,
    #[serde(default)]
    version: Option<Scalar>,
    #[serde(default)]
    description: Option<Scalar>,
}

#[derive(Debug, Default, Deserialize)]
struct PathText {
    #[serde(default)]
    get: Option<OperationText>,
    #[serde(default)]
    put: Option<OperationText>,
    #[serde(default)]
    post: Option<OperationText>,
    #[serde(default)]
    delete: Option<OperationText>,
    #[serde(default)]
    options: Option<OperationText>,
    #[serde(default)]
    head: Option<OperationText>,
    #[serde(default)]
    patch: Option<OperationText>,
    #[serde(default)]
    trace: Option<OperationText>,
}

impl PathText {
    fn operations(&self) -> impl Iterator<Item = (&'static str, &OperationText)> {
        let all = [
            &self.get,
            &self.put,
            &self.post,
            &self.delete,
            &self.options,
            &self.head,
            &self.patch,
            &self.trace,
        ];
        METHODS
            .iter()
            .zip(all)
            .filter_map(|(m, op)| op.as_ref().map(|op| (*m, op)))
    }
}

#[derive(Debug, Default, Deserialize)]
struct OperationText {
    #[serde(default, rename = "operationId")]
    operation_id: Option<Scalar>,
    #[serde(default)]
    summary: Option<Scalar>,
    #[serde(default)]
    description: Option<Scalar>,
}

fn cut(text: Option<&Scalar>) -> Value {
    match text {
        None => Value::Null,
        Some(Scalar(t)) if t.chars().count() > MAX_TEXT => {
            json!(format!(
                "{}… (cut)",
                t.chars().take(MAX_TEXT).collect::<String>()
            ))
        }
        Some(Scalar(t)) => json!(t),
    }
}

/// The digest of `text` (already parsed once by the import, so it parses
/// again); an empty digest if this pass fails on a part the import did
/// not need.
pub fn of(text: &str) -> Value {
    let parsed: Text = yaml::parse(text).map(|(t, _)| t).unwrap_or_default();
    let info = parsed.info.unwrap_or_default();
    let operations: Vec<Value> = parsed
        .paths
        .unwrap_or_default()
        .0
        .iter()
        .flat_map(|(path, item)| {
            item.operations().map(move |(method, op)| {
                json!({
                    "method": method.to_ascii_uppercase(),
                    "path": path,
                    "operation": op.operation_id.as_ref().map(|s| s.0.clone()),
                    "summary": cut(op.summary.as_ref()),
                    "description": cut(op.description.as_ref()),
                })
            })
        })
        .collect();
    json!({
        "title": cut(info.title.as_ref()),
        "version": cut(info.version.as_ref()),
        "description": cut(info.description.as_ref()),
        "operations": operations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_kept_as_text() {
        let doc = "openapi: 3.1.0\ninfo:\n  title: Pets\n  version: 1.0\n  description: 'Hello <script>alert(1)</script>'\npaths:\n  /pets/{id}:\n    get:\n      operationId: getPet\n      summary: One pet\n      description: |\n        Returns a pet.\n\n        Second paragraph.\n";
        let d = of(doc);
        assert_eq!(d["title"], "Pets");
        assert_eq!(d["version"], "1.0");
        assert_eq!(d["description"], "Hello <script>alert(1)</script>");
        assert_eq!(d["operations"][0]["method"], "GET");
        assert_eq!(d["operations"][0]["path"], "/pets/{id}");
        assert_eq!(d["operations"][0]["operation"], "getPet");
        assert!(
            d["operations"][0]["description"]
                .as_str()
                .unwrap()
                .contains("Second paragraph")
        );
        // JSON too, and a document this pass cannot read gives an empty digest.
        let d =
            of(r#"{"openapi": "3.0.0", "info": {"title": "J"}, "paths": {"/a": {"post": {}}}}"#);
        assert_eq!(d["title"], "J");
        assert_eq!(d["operations"][0]["method"], "POST");
        assert_eq!(of("info: [1, 2]")["operations"], json!([]));
    }
}
