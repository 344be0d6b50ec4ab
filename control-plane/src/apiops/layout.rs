//! The APIOps extractor's folder layout read into catalog resources:
//!
//! ```text
//! policy.xml                                   global policies
//! apis/NAME/apiInformation.json                path, serviceUrl, subscription settings
//! apis/NAME/specification.yaml|yml|json        the operations (OpenAPI 3)
//! apis/NAME/policy.xml                         API policies
//! apis/NAME/operations/OP/policy.xml           operation policies (OP: an operationId)
//! products/NAME/productInformation.json        subscriptionRequired
//! products/NAME/apis.json                      [{"name": API}]
//! products/NAME/policy.xml                     product policies
//! namedValues/NAME/namedValueInformation.json  displayName, value, secret
//! backends/NAME/backendInformation.json        url, protocol
//! policyFragments/NAME/policy.xml              a <fragment> (+ policyFragmentInformation.json)
//! ```
//!
//! The extractor's own spellings with spaces (`named values/`, `policy
//! fragments/`) are read too. Groups, tags, diagnostics, loggers and the
//! other resources edgegw has no counterpart for are reported as skipped,
//! with why. Every problem names its file and, where it has one, its line.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};

use crate::{apply::DesiredResource, model, openapi};

/// A file's problem: the whole import is refused unless `--partial`.
#[derive(Clone, Debug, Serialize)]
pub struct Refused {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub message: String,
    /// The resource it refuses (`apis/orders`), when it is one's.
    #[serde(skip)]
    pub resource: Option<String>,
}

/// A file or folder not imported, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    pub file: String,
    pub why: String,
}

/// What a folder holds, read.
#[derive(Debug, Default)]
pub struct Read {
    pub resources: Vec<(DesiredResource, String)>,
    pub skipped: Vec<Skipped>,
    pub refused: Vec<Refused>,
    /// The policy file of each scope (`apis/orders` -> its policy.xml;
    /// `apis/orders operation get` -> the operation's), to place problems
    /// the catalog's validation finds.
    pub policy_files: BTreeMap<String, String>,
}

/// Folders whose resources edgegw has no counterpart for.
const SKIPPED: &[(&str, &str)] = &[
    (
        "groups",
        "developer-portal groups: edgegw grants access by subscription scope",
    ),
    ("tags", "tags are portal metadata; nothing to enforce"),
    (
        "diagnostics",
        "diagnostics: edgegw logs every request and exports OTLP (see --otlp-endpoint)",
    ),
    (
        "loggers",
        "loggers: edgegw logs every request and exports OTLP (see --otlp-endpoint)",
    ),
    (
        "version sets",
        "version sets: import each version as its own API",
    ),
    (
        "versionSets",
        "version sets: import each version as its own API",
    ),
    (
        "gateways",
        "APIM gateways: register edgegw gateways with POST /v1/gateways",
    ),
    (
        "subscriptions",
        "subscription keys are not in the extract; create subscriptions with POST /v1/subscriptions",
    ),
    (
        "authorizationServers",
        "authorization servers: use validate-jwt in policies",
    ),
    (
        "identityProviders",
        "identity providers: portal sign-in is edgegw's own",
    ),
    (
        "certificates",
        "certificates: add them to a node's catalog file",
    ),
];

impl Read {
    fn refuse(&mut self, file: &str, line: Option<u64>, resource: Option<String>, message: String) {
        self.refused.push(Refused {
            file: file.to_string(),
            line,
            message,
            resource,
        });
    }

    fn skip(&mut self, file: &str, why: &str) {
        self.skipped.push(Skipped {
            file: file.to_string(),
            why: why.to_string(),
        });
    }

    fn add(&mut self, kind: &str, name: &str, body: Value, file: &str) {
        self.resources.push((
            DesiredResource {
                kind: kind.into(),
                name: name.into(),
                body,
            },
            file.to_string(),
        ));
    }
}

/// Reads the files of a folder (relative paths with `/`, and their text).
pub fn read(files: &BTreeMap<String, String>) -> Read {
    let mut out = Read::default();
    // Files grouped by their resource folder: `apis/orders` -> files under it.
    let mut groups: BTreeMap<(String, String), BTreeMap<String, &str>> = BTreeMap::new();
    let mut skipped_dirs = BTreeSet::new();
    for (path, text) in files {
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["policy.xml"] => {
                if let Some(xml) = xml(&mut out, path, text, "policies") {
                    out.policy_files.insert("policies".into(), path.clone());
                    out.add("policies", "", Value::String(xml), path);
                }
            }
            [top, name, rest @ ..] if !rest.is_empty() => {
                let kind = match *top {
                    "apis" => "apis",
                    "products" => "products",
                    "namedValues" | "named values" => "named-values",
                    "backends" => "backends",
                    "policyFragments" | "policy fragments" => "fragments",
                    other => {
                        match SKIPPED.iter().find(|(d, _)| *d == other) {
                            Some((_, why)) => {
                                if skipped_dirs.insert(other.to_string()) {
                                    out.skip(&format!("{other}/"), why);
                                }
                            }
                            None => out.skip(path, "not part of the APIOps layout"),
                        }
                        continue;
                    }
                };
                groups
                    .entry((kind.to_string(), name.to_string()))
                    .or_default()
                    .insert(rest.join("/"), text.as_str());
            }
            _ => out.skip(path, "not part of the APIOps layout"),
        }
    }
    let apis: BTreeSet<String> = groups
        .keys()
        .filter(|(k, _)| k == "apis")
        .map(|(_, n)| n.clone())
        .collect();
    for ((kind, name), group) in &groups {
        let dir = format!(
            "{}/{name}",
            match kind.as_str() {
                "named-values" => top_name(files, &["namedValues", "named values"], name),
                "fragments" => top_name(files, &["policyFragments", "policy fragments"], name),
                k => k.to_string(),
            }
        );
        match kind.as_str() {
            "apis" => api(&mut out, &dir, name, group),
            "products" => product(&mut out, &dir, name, group, &apis),
            "named-values" => named_value(&mut out, &dir, name, group),
            "backends" => backend(&mut out, &dir, name, group),
            _ => fragment(&mut out, &dir, name, group),
        }
    }
    out
}

/// Which spelling of a top folder holds `name`.
fn top_name(files: &BTreeMap<String, String>, spellings: &[&str], name: &str) -> String {
    spellings
        .iter()
        .find(|s| files.keys().any(|k| k.starts_with(&format!("{s}/{name}/"))))
        .unwrap_or(&spellings[0])
        .to_string()
}

/// The resource's name: the folder's, when it is one edgegw accepts.
fn name_ok(out: &mut Read, dir: &str, noun: &str, name: &str) -> bool {
    match model::check_name(noun, name) {
        Ok(()) => true,
        Err(e) => {
            out.refuse(&format!("{dir}/"), None, None, e.message);
            false
        }
    }
}

/// A JSON file's value; a syntax error is refused at its line.
fn json_file(out: &mut Read, file: &str, text: &str, resource: &str) -> Option<Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Some(v),
        Err(e) => {
            let message = e.to_string();
            let message = message
                .rfind(" at line ")
                .map_or(message.as_str(), |at| &message[..at]);
            out.refuse(
                file,
                Some(e.line() as u64),
                Some(resource.into()),
                format!(
                    "invalid JSON: {message} (column {}); fix the file",
                    e.column()
                ),
            );
            None
        }
    }
}

/// A policy XML file's text, checked to be well-formed XML.
fn xml(out: &mut Read, file: &str, text: &str, resource: &str) -> Option<String> {
    // As the gateway reads it: expressions may hold `<`, `&` and quotes.
    match roxmltree::Document::parse(&gateway_model::apim::escape_expressions(text)) {
        Ok(_) => Some(text.to_string()),
        Err(e) => {
            let pos = e.pos();
            let message = e.to_string();
            let message = message
                .strip_suffix(&format!(" at {}:{}", pos.row, pos.col))
                .unwrap_or(&message)
                .to_string();
            out.refuse(
                file,
                Some(pos.row as u64),
                Some(resource.into()),
                format!(
                    "malformed XML at column {}: {message}; fix the document",
                    pos.col
                ),
            );
            None
        }
    }
}

/// The line of a file's text holding `needle` (1-based).
fn line_of(text: &str, needle: &str) -> Option<u64> {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i as u64 + 1)
}

fn api(out: &mut Read, dir: &str, name: &str, group: &BTreeMap<String, &str>) {
    let id = format!("apis/{name}");
    if name.contains(";rev=") {
        out.skip(
            &format!("{dir}/"),
            "a revision that is not the current one: edgegw serves the current revision",
        );
        return;
    }
    if !name_ok(out, dir, "api", name) {
        return;
    }
    let info_file = format!("{dir}/apiInformation.json");
    let Some(info_text) = group.get("apiInformation.json") else {
        out.refuse(
            &format!("{dir}/"),
            None,
            Some(id),
            "apiInformation.json is missing; the extractor writes one per API".into(),
        );
        return;
    };
    let info = json_file(out, &info_file, info_text, &id);
    let spec = [
        "specification.yaml",
        "specification.yml",
        "specification.json",
    ]
    .into_iter()
    .find_map(|f| group.get(f).map(|t| (f, *t)));
    let operations = match spec {
        None => {
            out.refuse(
                &format!("{dir}/"),
                None,
                Some(id.clone()),
                "specification.yaml (or .json) is missing: the API's operations come from it; extract with API_SPECIFICATION_FORMAT=YAML or JSON".into(),
            );
            None
        }
        Some((file, text)) => match openapi::operations_of(text) {
            Ok(ops) => Some(ops),
            Err(m) => {
                let line = m
                    .split("line ")
                    .nth(1)
                    .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                    .and_then(|n| n.parse().ok());
                out.refuse(&format!("{dir}/{file}"), line, Some(id.clone()), m);
                None
            }
        },
    };
    let policies = match group.get("policy.xml") {
        Some(text) => xml(out, &format!("{dir}/policy.xml"), text, &id).map(Value::String),
        None => None,
    };
    out.policy_files
        .insert(id.clone(), format!("{dir}/policy.xml"));
    let mut operations = operations.unwrap_or_default();
    let mut ok = true;
    for (file, text) in group {
        let parts: Vec<&str> = file.split('/').collect();
        match parts.as_slice() {
            [
                "apiInformation.json"
                | "specification.yaml"
                | "specification.yml"
                | "specification.json"
                | "policy.xml",
            ] => {}
            ["operations", op, "policy.xml"] => {
                let path = format!("{dir}/{file}");
                out.policy_files
                    .insert(format!("{id} operation {op}"), path.clone());
                let Some(xml) = xml(out, &path, text, &id) else {
                    ok = false;
                    continue;
                };
                match operations.iter_mut().find(|o| o.name == *op) {
                    Some(o) => o.policies = Some(Value::String(xml)),
                    None if spec.is_some() => {
                        ok = false;
                        out.refuse(
                            &path,
                            None,
                            Some(id.clone()),
                            format!(
                                "operation \"{op}\" is not in the API's specification (its operations are named by operationId); rename the folder or add the operation"
                            ),
                        );
                    }
                    None => {}
                }
            }
            ["operations", ..] => {}
            ["diagnostics", ..] => out.skip(
                &format!("{dir}/{file}"),
                "diagnostics: edgegw logs every request and exports OTLP",
            ),
            ["tags.json"] => out.skip(&format!("{dir}/{file}"), "tags are portal metadata"),
            _ => out.skip(&format!("{dir}/{file}"), "not part of the APIOps layout"),
        }
    }
    let (Some(info), true) = (info, ok && spec.is_some()) else {
        return;
    };
    let p = &info["properties"];
    if let Some(t) = p["type"].as_str().filter(|t| *t != "http") {
        out.refuse(
            &info_file,
            line_of(info_text, "\"type\""),
            Some(id),
            format!("an API of type \"{t}\" is not served by edgegw (HTTP APIs only); remove it from the folder or import with --partial"),
        );
        return;
    }
    let Some(backend) = p["serviceUrl"].as_str().filter(|u| !u.is_empty()) else {
        out.refuse(
            &info_file,
            line_of(info_text, "\"properties\""),
            Some(id),
            "properties.serviceUrl is missing: edgegw needs the API's backend URL; add it".into(),
        );
        return;
    };
    let path = format!(
        "/{}",
        p["path"].as_str().unwrap_or_default().trim_matches('/')
    );
    let mut doc = json!({
        "path": path,
        "backend": backend,
        "subscription_required": p["subscriptionRequired"].as_bool().unwrap_or(true),
        "operations": operations,
    });
    if let Some(keys) = p["subscriptionKeyParameterNames"].as_object() {
        doc["subscription_key"] = json!({
            "header": keys.get("header").and_then(Value::as_str).unwrap_or("Ocp-Apim-Subscription-Key"),
            "query": keys.get("query").and_then(Value::as_str).unwrap_or("subscription-key"),
        });
    }
    if let Some(p) = policies {
        doc["policies"] = p;
    }
    out.add("apis", name, doc, &info_file);
}

fn product(
    out: &mut Read,
    dir: &str,
    name: &str,
    group: &BTreeMap<String, &str>,
    apis: &BTreeSet<String>,
) {
    let id = format!("products/{name}");
    if !name_ok(out, dir, "product", name) {
        return;
    }
    let info_file = format!("{dir}/productInformation.json");
    let info = match group.get("productInformation.json") {
        Some(text) => json_file(out, &info_file, text, &id),
        None => {
            out.refuse(
                &format!("{dir}/"),
                None,
                Some(id),
                "productInformation.json is missing; the extractor writes one per product".into(),
            );
            return;
        }
    };
    let mut listed = Vec::new();
    let mut ok = info.is_some();
    if let Some(text) = group.get("apis.json") {
        let file = format!("{dir}/apis.json");
        match json_file(out, &file, text, &id) {
            Some(Value::Array(list)) => {
                for entry in list {
                    let api = entry["name"]
                        .as_str()
                        .or(entry.as_str())
                        .unwrap_or_default();
                    if apis.contains(api) {
                        listed.push(api.to_string());
                    } else {
                        ok = false;
                        out.refuse(
                            &file,
                            line_of(text, &format!("\"{api}\"")),
                            Some(id.clone()),
                            format!("api \"{api}\" is not in the folder (no apis/{api}/); add it or remove it from the product"),
                        );
                    }
                }
            }
            Some(_) => {
                ok = false;
                out.refuse(
                    &file,
                    Some(1),
                    Some(id.clone()),
                    "must be a list of {\"name\": API}".into(),
                );
            }
            None => ok = false,
        }
    }
    let policies = match group.get("policy.xml") {
        Some(text) => {
            let p = xml(out, &format!("{dir}/policy.xml"), text, &id);
            ok &= p.is_some();
            p.map(Value::String)
        }
        None => None,
    };
    out.policy_files
        .insert(id.clone(), format!("{dir}/policy.xml"));
    for file in group.keys() {
        if !matches!(
            file.as_str(),
            "productInformation.json" | "apis.json" | "policy.xml"
        ) {
            let why = if file.starts_with("groups") {
                "developer-portal groups: edgegw grants access by subscription scope"
            } else if file.starts_with("tags") {
                "tags are portal metadata"
            } else {
                "not part of the APIOps layout"
            };
            out.skip(&format!("{dir}/{file}"), why);
        }
    }
    let Some(info) = info.filter(|_| ok) else {
        return;
    };
    let mut doc = json!({
        "subscription_required": info["properties"]["subscriptionRequired"].as_bool().unwrap_or(true),
        "apis": listed,
    });
    if let Some(p) = policies {
        doc["policies"] = p;
    }
    out.add("products", name, doc, &info_file);
}

fn named_value(out: &mut Read, dir: &str, folder: &str, group: &BTreeMap<String, &str>) {
    let file = format!("{dir}/namedValueInformation.json");
    let Some(text) = group.get("namedValueInformation.json") else {
        out.skip(&format!("{dir}/"), "no namedValueInformation.json");
        return;
    };
    let id = format!("named-values/{folder}");
    let Some(info) = json_file(out, &file, text, &id) else {
        return;
    };
    let p = &info["properties"];
    // Policies say {{displayName}}; the folder is the value's id.
    let name = p["displayName"].as_str().unwrap_or(folder).to_string();
    if !name_ok(out, dir, "named value", &name) {
        return;
    }
    if p.get("keyVault").is_some_and(|k| !k.is_null()) {
        out.refuse(
            &file,
            line_of(text, "\"keyVault\""),
            Some(id),
            "a Key Vault reference: edgegw cannot read the vault; write \"value\" here (or create the named value with PUT /v1/named-values/NAME)".into(),
        );
        return;
    }
    let secret = p["secret"].as_bool().unwrap_or(false);
    let Some(value) = p["value"].as_str() else {
        let why = if secret {
            "the extractor does not write secret values"
        } else {
            "\"value\" is missing"
        };
        out.refuse(
            &file,
            line_of(text, "\"properties\""),
            Some(id),
            format!("{why}; add \"value\" to properties (kept secret: never shown nor exported)"),
        );
        return;
    };
    out.add(
        "named-values",
        &name,
        json!({"value": value, "secret": secret}),
        &file,
    );
}

fn backend(out: &mut Read, dir: &str, name: &str, group: &BTreeMap<String, &str>) {
    let file = format!("{dir}/backendInformation.json");
    let Some(text) = group.get("backendInformation.json") else {
        out.skip(&format!("{dir}/"), "no backendInformation.json");
        return;
    };
    let id = format!("backends/{name}");
    if !name_ok(out, dir, "backend", name) {
        return;
    }
    let Some(info) = json_file(out, &file, text, &id) else {
        return;
    };
    let Some(url) = info["properties"]["url"].as_str() else {
        out.refuse(
            &file,
            line_of(text, "\"properties\""),
            Some(id),
            "properties.url is missing; add the backend's URL".into(),
        );
        return;
    };
    out.add("backends", name, json!({"url": url}), &file);
}

fn fragment(out: &mut Read, dir: &str, name: &str, group: &BTreeMap<String, &str>) {
    let id = format!("fragments/{name}");
    if !name_ok(out, dir, "fragment", name) {
        return;
    }
    let file = format!("{dir}/policy.xml");
    let Some(text) = group.get("policy.xml") else {
        out.refuse(
            &format!("{dir}/"),
            None,
            Some(id),
            "policy.xml is missing: a fragment's policies are in it".into(),
        );
        return;
    };
    let Some(xml) = xml(out, &file, text, &id) else {
        return;
    };
    let description = group
        .get("policyFragmentInformation.json")
        .and_then(|t| {
            json_file(
                out,
                &format!("{dir}/policyFragmentInformation.json"),
                t,
                &id,
            )
        })
        .and_then(|info| info["properties"]["description"].as_str().map(String::from));
    let mut doc = json!({"policies": xml});
    if let Some(d) = description.filter(|d| !d.is_empty()) {
        doc["description"] = json!(d);
    }
    out.policy_files.insert(id, file.clone());
    out.add("fragments", name, doc, &file);
}
