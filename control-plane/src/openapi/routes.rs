//! From an OpenAPI document's paths to the gateway's operations, with a
//! note for everything that does not map one to one.
//!
//! - A path item given by `$ref` (to `#/components/pathItems/...` or to
//!   another path, `#/paths/...`) is resolved; fields written beside the
//!   `$ref` win. External references are not fetched: noted, skipped.
//! - A path key with a query (`/v1/messages?beta=true`) matches on its path
//!   part. The gateway routes on method and path, so the query variants of
//!   one method and path are one operation: the variant without a query
//!   (else the first) names it, the others are noted as merged into it. Their
//!   requests reach the same operation and the backend with their query.
//! - Templates become whole-segment parameters (`{name}.json` matches any
//!   segment: noted); two paths that become the same route are merged.
//! - Path- and operation-level `servers`, callbacks and methods the gateway
//!   does not route are noted.

use gateway_model::config::UrlTemplate;
use serde::Serialize;

use super::document::{Document, Operation, PathItem};
use crate::model::{MAX_NAME, OperationDoc};

/// One thing of the document the import did not take as it is.
#[derive(Clone, Debug, Serialize)]
pub struct Note {
    /// JSON pointer into the document.
    pub pointer: String,
    /// The path key, as written.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// What happened and why.
    pub note: String,
}

/// The operations to import and what the document held.
#[derive(Debug, Default)]
pub struct Plan {
    pub operations: Vec<OperationDoc>,
    pub notes: Vec<Note>,
    /// Operations (path and method pairs) the document describes.
    pub in_document: usize,
    /// Operations folded into another with the same method and route.
    pub merged: usize,
    /// Operations not imported (their notes say why).
    pub skipped: usize,
}

/// How deep `$ref` chains between path items are followed.
const MAX_REF_CHAIN: usize = 8;

struct Candidate {
    path: String,
    pointer: String,
    method: &'static str,
    url: String,
    has_query: bool,
    name: String,
}

pub fn plan(doc: &Document) -> Plan {
    let mut plan = Plan::default();
    let mut candidates: Vec<Candidate> = Vec::new();
    let empty = Default::default();
    let paths = doc.paths.as_ref().unwrap_or(&empty);
    for (key, item) in &paths.0 {
        let at = format!("/paths/{}", escape(key));
        let note = |method: Option<&str>, pointer: &str, note: String| Note {
            pointer: pointer.to_string(),
            path: key.clone(),
            method: method.map(str::to_ascii_uppercase),
            note,
        };
        let item = match resolve(doc, item, 0) {
            Ok(item) => item,
            Err(why) => {
                plan.notes.push(note(
                    None,
                    &format!("{at}/$ref"),
                    format!("{why}; the path's operations are not imported"),
                ));
                continue;
            }
        };
        let operations = item.operations();
        let mut unrouted: Vec<(String, String)> = Vec::new();
        if item.query.is_some() {
            unrouted.push(("query".into(), format!("{at}/query")));
        }
        for (method, _) in item.additional_operations.iter().flat_map(|m| &m.0) {
            unrouted.push((
                method.clone(),
                format!("{at}/additionalOperations/{}", escape(method)),
            ));
        }
        for (method, pointer) in unrouted {
            plan.in_document += 1;
            plan.skipped += 1;
            plan.notes.push(note(
                Some(&method),
                &pointer,
                format!("method {method} is not imported: the gateway routes the methods of OpenAPI 3.1 (GET, PUT, POST, DELETE, OPTIONS, HEAD, PATCH, TRACE); add it by hand with method \"*\" if needed"),
            ));
        }
        if operations.is_empty() {
            continue;
        }
        if item.servers.as_ref().is_some_and(|s| !s.is_empty()) {
            plan.notes.push(note(
                None,
                &format!("{at}/servers"),
                "servers of the path item are not applied: its operations go to the API's backend (add a set-backend policy to the operations that need another)".into(),
            ));
        }
        let (path, query) = match key.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (key.as_str(), None),
        };
        let checked = if path.starts_with('/') {
            let (url, lossy) = convert_template(path);
            if lossy {
                plan.notes.push(note(
                    None,
                    &at,
                    format!("routed as \"{url}\": the gateway matches whole segments, so a segment mixing text and parameters matches any value there"),
                ));
            }
            UrlTemplate::parse(&url).map(|_| url)
        } else {
            Err(format!("path \"{path}\" must start with '/'"))
        };
        let url = match checked {
            Ok(url) => url,
            Err(why) => {
                for (method, _) in &operations {
                    plan.in_document += 1;
                    plan.skipped += 1;
                    plan.notes.push(note(
                        Some(method),
                        &format!("{at}/{method}"),
                        format!("not imported: {why}"),
                    ));
                }
                continue;
            }
        };
        for (method, op) in operations {
            plan.in_document += 1;
            let pointer = format!("{at}/{method}");
            extras(op, &pointer, &mut |p, n| {
                plan.notes.push(note(Some(method), &p, n))
            });
            let name = op
                .operation_id
                .as_ref()
                .map(|id| sanitise(&id.0))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| sanitise(&format!("{method}{path}")));
            candidates.push(Candidate {
                path: key.clone(),
                pointer,
                method,
                url: url.clone(),
                has_query: query.is_some(),
                name,
            });
        }
    }
    // One operation per method and route; the variant without a query names it.
    let mut groups: Vec<Vec<Candidate>> = Vec::new();
    for c in candidates {
        match groups
            .iter_mut()
            .find(|g| g[0].method == c.method && g[0].url == c.url)
        {
            Some(group) => group.push(c),
            None => groups.push(vec![c]),
        }
    }
    for mut group in groups {
        let keep = group.iter().position(|c| !c.has_query).unwrap_or(0);
        let chosen = group.remove(keep);
        let name = unique(&plan.operations, &chosen.name);
        let method = chosen.method.to_ascii_uppercase();
        for other in group {
            plan.merged += 1;
            let why = if other.has_query {
                "the gateway routes on method and path, not on the query; requests with this query reach that operation, and the backend, unchanged"
            } else {
                "both paths become the same gateway route"
            };
            plan.notes.push(Note {
                pointer: other.pointer,
                path: other.path,
                method: Some(method.clone()),
                note: format!(
                    "merged into operation \"{name}\" ({method} {}): {why}",
                    chosen.url
                ),
            });
        }
        plan.operations.push(OperationDoc {
            name,
            method,
            url: chosen.url,
            policies: None,
            websocket: None,
        });
    }
    plan
}

/// Notes on the parts of an operation that are not imported.
fn extras(op: &Operation, pointer: &str, note: &mut dyn FnMut(String, String)) {
    if op.servers.as_ref().is_some_and(|s| !s.is_empty()) {
        note(
            format!("{pointer}/servers"),
            "servers of the operation are not applied: it goes to the API's backend (add a set-backend policy to it if it needs another)".into(),
        );
    }
    if op.callbacks.as_ref().is_some_and(|c| !c.0.is_empty()) {
        note(
            format!("{pointer}/callbacks"),
            "callbacks are not imported: they are requests the API sends, not routes".into(),
        );
    }
}

/// `item` with its `$ref` (if any) resolved, fields beside it winning.
fn resolve(doc: &Document, item: &PathItem, depth: usize) -> Result<PathItem, String> {
    let Some(reference) = &item.reference else {
        return Ok(item.clone());
    };
    if depth >= MAX_REF_CHAIN {
        return Err(format!(
            "$ref \"{reference}\": more than {MAX_REF_CHAIN} path items refer on (a cycle?)"
        ));
    }
    let Some(fragment) = reference.strip_prefix('#') else {
        return Err(format!(
            "$ref \"{reference}\" points into another document, which the import does not fetch; bundle the document into one first"
        ));
    };
    let steps: Vec<String> = crate::api::http::percent_decode(fragment)
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let target = match steps.as_slice() {
        [paths, key] if paths == "paths" => doc.paths.as_ref().and_then(|p| p.get(key)),
        [components, items, key] if components == "components" && items == "pathItems" => doc
            .components
            .as_ref()
            .and_then(|c| c.path_items.as_ref())
            .and_then(|p| p.get(key)),
        _ => {
            return Err(format!(
                "$ref \"{reference}\" must point to #/components/pathItems/NAME or #/paths/PATH"
            ));
        }
    };
    let target = target.ok_or_else(|| format!("$ref \"{reference}\" points to nothing"))?;
    let base = resolve(doc, target, depth + 1)?;
    Ok(item.clone().over(&base))
}

/// An OpenAPI path template as a gateway URL template, and whether a
/// segment mixing text and parameters was widened to a whole parameter.
pub fn convert_template(path: &str) -> (String, bool) {
    let mut lossy = false;
    let segments: Vec<String> = path
        .split('/')
        .map(|segment| {
            let Some(open) = segment.find('{') else {
                return segment.to_string();
            };
            let name: String = segment[open + 1..]
                .chars()
                .take_while(|c| *c != '}')
                .map(|c| {
                    if c.is_alphanumeric() || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let whole = segment.starts_with('{')
                && segment.ends_with('}')
                && !segment[1..segment.len() - 1].contains(['{', '}']);
            lossy |= !whole;
            format!("{{{name}}}")
        })
        .collect();
    (segments.join("/"), lossy)
}

/// A JSON pointer token.
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// `base`, or `base-2`, `base-3`...: a name no operation has yet.
fn unique(taken: &[OperationDoc], base: &str) -> String {
    let mut name = base.to_string();
    let mut n = 2;
    while taken.iter().any(|o| o.name == name) {
        let suffix = format!("-{n}");
        name = format!("{}{suffix}", truncate(base, MAX_NAME - suffix.len()));
        n += 1;
    }
    name
}

/// An operation name from free text: runs of other characters become one
/// '-', at most 64 characters.
pub fn sanitise(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let name = truncate(out.trim_matches('-'), MAX_NAME).to_string();
    // "." and ".." are not names (see `model::check_name`).
    if name.chars().all(|c| c == '.') {
        String::new()
    } else {
        name
    }
}

fn truncate(text: &str, max: usize) -> &str {
    &text[..text.len().min(max)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_model::config::yaml;

    fn plan_of(text: &str) -> Plan {
        plan(&yaml::from_str::<Document>(text).unwrap())
    }

    fn got(plan: &Plan) -> Vec<(&str, &str, &str)> {
        plan.operations
            .iter()
            .map(|o| (o.name.as_str(), o.method.as_str(), o.url.as_str()))
            .collect()
    }

    #[test]
    fn operations_from_yaml_paths() {
        let plan = plan_of(
            "openapi: 3.0.3\npaths:\n  /pets/{petId}:\n    get: {operationId: showPetById}\n    delete: {}\n  /pets:\n    get: {operationId: 'list pets!'}\n",
        );
        assert_eq!(
            got(&plan),
            [
                ("showPetById", "GET", "/pets/{petId}"),
                ("delete-pets-petId", "DELETE", "/pets/{petId}"),
                ("list-pets", "GET", "/pets"),
            ]
        );
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    #[test]
    fn templates_become_whole_segment_parameters() {
        for (from, to, lossy) in [
            ("/pets/{petId}", "/pets/{petId}", false),
            (
                "/users/{user-id}/files/{name}.json",
                "/users/{user_id}/files/{name}",
                true,
            ),
            ("/v{major}.{minor}/x", "/{major}/x", true),
            ("/plain/", "/plain/", false),
        ] {
            assert_eq!(convert_template(from), (to.to_string(), lossy), "{from}");
        }
    }

    #[test]
    fn query_variants_merge_into_the_plain_operation() {
        let plan = plan_of(
            "openapi: 3.1.0\npaths:\n  /v1/messages?beta=true:\n    post: {operationId: betaCreate}\n  /v1/messages:\n    post: {operationId: create}\n    get: {}\n  /v1/files?beta=true:\n    get: {operationId: listFiles}\n",
        );
        assert_eq!(
            got(&plan),
            [
                ("create", "POST", "/v1/messages"),
                ("get-v1-messages", "GET", "/v1/messages"),
                ("listFiles", "GET", "/v1/files"),
            ]
        );
        assert_eq!((plan.in_document, plan.merged, plan.skipped), (4, 1, 0));
        assert_eq!(plan.notes.len(), 1);
        assert_eq!(
            plan.notes[0].pointer,
            "/paths/~1v1~1messages?beta=true/post"
        );
        assert!(
            plan.notes[0]
                .note
                .contains("merged into operation \"create\"")
        );
    }

    #[test]
    fn path_item_references_are_resolved() {
        let plan = plan_of(
            r##"openapi: 3.1.0
paths:
  /a: {$ref: '#/components/pathItems/A'}
  /b: {$ref: '#/paths/~1a', post: {operationId: postB}}
  /c: {$ref: 'other.yaml#/paths/~1c'}
  /d: {$ref: '#/components/pathItems/Missing'}
  /e: {$ref: '#/paths/~1e'}
components:
  pathItems:
    A: {get: {operationId: getA}, parameters: [{name: x, in: query, schema: {minimum: -9223372036854776000}}]}
"##,
        );
        assert_eq!(
            got(&plan),
            [
                ("getA", "GET", "/a"),
                ("getA-2", "GET", "/b"),
                ("postB", "POST", "/b"),
            ]
        );
        let notes: Vec<(&str, &str)> = plan
            .notes
            .iter()
            .map(|n| (n.pointer.as_str(), n.note.as_str()))
            .collect();
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].1.contains("another document"), "{notes:?}");
        assert!(notes[1].1.contains("points to nothing"), "{notes:?}");
        assert!(notes[2].1.contains("a cycle"), "{notes:?}");
    }

    #[test]
    fn unrouteable_paths_and_extras_are_noted() {
        let plan = plan_of(
            "openapi: 3.0.0\npaths:\n  /a/*/b:\n    get: {}\n  x:\n    get: {}\n  /ok:\n    get:\n      servers: [{url: 'https://other'}]\n      callbacks: {cb: {}}\n",
        );
        assert_eq!(got(&plan), [("get-ok", "GET", "/ok")]);
        assert_eq!((plan.in_document, plan.skipped), (3, 2));
        let text: Vec<&str> = plan.notes.iter().map(|n| n.note.as_str()).collect();
        assert!(text[0].contains("'*' is only allowed"), "{text:?}");
        assert!(text[1].contains("must start with '/'"), "{text:?}");
        assert!(text[2].contains("servers of the operation"), "{text:?}");
        assert!(text[3].contains("callbacks"), "{text:?}");
    }
}
