//! The documents the management API accepts: checked for shape here
//! (unknown fields, names), for meaning by the gateway's own validation
//! when the bundles are assembled (`crate::bundle`).

use gateway_model::{
    catalog::file::KeyNamesFile,
    config::{BackendSection, DosSection, RedisSection},
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{error::ApiError, store::Kind};

/// The longest resource name.
pub const MAX_NAME: usize = 64;

/// Names are 1..=64 of `A-Z a-z 0-9 . _ -`, other than `.` and `..`:
/// safe in paths, logs, counter keys and file names on every side, and the
/// same after a round trip through a URL path segment (clients resolve `.`
/// and `..` as steps: `PUT /v1/apis/..` would reach `/v1`).
pub fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        let why = if name == "." || name == ".." {
            " (a URL path step, not a name)"
        } else {
            ""
        };
        Err(ApiError::bad_request(format!(
            "{what} name {name:?} is not allowed{why}: use 1 to {MAX_NAME} characters among A-Z a-z 0-9 . _ -, other than \".\" and \"..\""
        )))
    }
}

/// An API with its operations and its API-management settings, in one
/// document; `crate::bundle` splits it into the gateway's `[[apis]]` entry
/// and the catalog's `apis` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiDoc {
    /// Unique name.
    pub name: String,
    /// Path prefix, e.g. "/orders".
    pub path: String,
    /// Optional host the API is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Backend URL or the name of a backend resource.
    pub backend: String,
    /// Whether calls need a subscription key (default true).
    #[serde(default = "yes")]
    pub subscription_required: bool,
    /// `{header, query}`: where the key is read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_key: Option<KeyNamesFile>,
    /// API-scope policies (`inbound`, `backend`, `outbound`, `on-error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Value>,
    /// Operations; none: every request under the path is accepted.
    #[serde(default)]
    pub operations: Vec<OperationDoc>,
    /// Whether WebSocket upgrades are allowed (default false: 403).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub websocket: bool,
    /// `%2F` in request paths: "refuse" (default, 400) or "keep".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoded_slashes: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationDoc {
    /// Unique within the API.
    pub name: String,
    /// HTTP method or "*".
    pub method: String,
    /// URL template relative to the API path, e.g. "/users/{id}".
    pub url: String,
    /// Operation-scope policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Value>,
    /// WebSocket upgrades on this operation; default: the API's setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket: Option<bool>,
}

fn yes() -> bool {
    true
}

/// A subscription as written by an admin; keys are generated, never sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionWrite {
    /// Unique id.
    pub id: String,
    /// "product:NAME", "api:NAME" or "all".
    pub scope: String,
    /// "active" (default), "suspended" or "expired".
    #[serde(default)]
    pub state: Option<String>,
}

/// A gateway registration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayWrite {
    /// Unique name.
    pub name: String,
    /// Names of the APIs it serves.
    #[serde(default)]
    pub apis: Vec<String>,
    /// Name of the DoS profile its XDP program enforces.
    #[serde(default)]
    pub dos_profile: Option<String>,
    /// Lifetime of the token issued on creation (default `--token-ttl`).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// Parses a JSON body into `T`, naming the problem, its place (JSON
/// pointer, line and column) and the fix on one line.
pub fn parse<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| refusal(what, &pointer(e.path()), &e.into_inner()))?;
    de.end().map_err(|e| refusal(what, "", &e))?;
    Ok(value)
}

fn refusal(what: &str, pointer: &str, e: &serde_json::Error) -> ApiError {
    // A syntax error has a line and column, not a place in a value.
    let pointer = if e.is_data() { pointer } else { "" };
    let at = match (pointer, e.line()) {
        ("", 0) => String::new(),
        ("", line) => format!(" at line {line} column {}", e.column()),
        (p, 0) => format!(" at {p}"),
        (p, line) => format!(" at {p} (line {line} column {})", e.column()),
    };
    let message = e.to_string();
    let what = if e.is_data() {
        format!("{what}{at}")
    } else {
        format!("{what}: invalid JSON body{at}")
    };
    let error = ApiError::bad_request(format!(
        "{what}: {}; {}",
        serde_message(&message),
        fix(&message)
    ));
    if pointer.is_empty() {
        error
    } else {
        error.at(pointer)
    }
}

/// Checks `value` against the shape `T`, naming the JSON pointer of a
/// problem and its fix: the documents handlers have already rewritten
/// (e.g. the name filled in from the path).
pub fn shape<T: serde::de::DeserializeOwned>(what: &str, value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let pointer = pointer(e.path());
        let at = if pointer.is_empty() {
            String::new()
        } else {
            format!(" at {pointer}")
        };
        let message = e.into_inner().to_string();
        ApiError::bad_request(format!(
            "{what}{at}: {}; {}",
            serde_message(&message),
            fix(&message)
        ))
        .at(pointer)
    })
}

/// A `serde_path_to_error` path as a JSON pointer (`/operations/2/name`).
pub fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                out.push('/');
                out.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Enum { variant } => out.push_str(&format!("/{variant}")),
            Segment::Unknown => out.push_str("/?"),
        }
    }
    out
}

/// serde_json's message without its trailing position (reported first).
fn serde_message(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    }
}

/// How to fix what serde refused, from the kind of its message.
pub fn fix(message: &str) -> &'static str {
    if message.starts_with("unknown field") {
        "remove the field or correct its name (control-plane/README.md lists the fields)"
    } else if message.starts_with("missing field") {
        "add the field"
    } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
        "give the field a value of the expected type"
    } else if message.starts_with("duplicate field") {
        "give each field once"
    } else {
        "send one JSON object as the body"
    }
}

/// Checks a document's shape and fills its name from the path: returns
/// the document to store. Shape problems (unknown fields, wrong types) are
/// 400 naming their JSON pointer; meaning is checked later, on the whole
/// bundle (422).
pub fn normalise(kind: Kind, name: &str, body: Value) -> Result<Value, ApiError> {
    let what = format!("{} \"{name}\"", kind.noun());
    // An APIM `<policies>` document is stored as sent; the bundle check
    // reads and validates it.
    if kind == Kind::Policies
        && let Value::String(text) = &body
        && gateway_model::apim::is_xml(text)
    {
        return Ok(body);
    }
    // A `<fragment>` document sent as is becomes the fragment's policies.
    let body = match body {
        Value::String(text) if kind == Kind::Fragment && gateway_model::apim::is_xml(&text) => {
            serde_json::json!({"name": name, "policies": text})
        }
        other => other,
    };
    let Value::Object(mut doc) = body else {
        return Err(ApiError::bad_request(format!(
            "{what}: the body must be a JSON object"
        )));
    };
    if !kind.singleton() {
        check_name(kind.noun(), name).map_err(|e| e.at(format!("/{}", kind.key())))?;
        match doc.get(kind.key()) {
            None => {
                doc.insert(kind.key().into(), Value::String(name.into()));
            }
            Some(Value::String(s)) if s == name => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "{what} at /{}: {other} differs from the name in the path; make them equal or omit it",
                    kind.key()
                ))
                .at(format!("/{}", kind.key())));
            }
        }
    }
    let doc = Value::Object(doc);
    match kind {
        Kind::Api => {
            let api: ApiDoc = shape(&what, doc)?;
            for (i, op) in api.operations.iter().enumerate() {
                check_name(
                    &format!("{what} at /operations/{i}/name: operation"),
                    &op.name,
                )
                .map_err(|e| e.at(format!("/operations/{i}/name")))?;
            }
            return Ok(serde_json::to_value(api).expect("documents serialise"));
        }
        Kind::Product => {
            let product: ProductDoc = shape(&what, doc.clone())?;
            for (i, api) in product.apis.iter().enumerate() {
                check_name(&format!("{what} at /apis/{i}: api"), api)
                    .map_err(|e| e.at(format!("/apis/{i}")))?;
            }
        }
        Kind::NamedValue => {
            shape::<NamedValueDoc>(&what, doc.clone())?;
        }
        Kind::Policies => {
            shape::<PoliciesDoc>(&what, doc.clone())?;
        }
        Kind::Fragment => {
            let fragment: FragmentDoc = shape(&what, doc.clone())?;
            if !matches!(&fragment.policies, Value::Array(_))
                && !fragment
                    .policies
                    .as_str()
                    .is_some_and(gateway_model::apim::is_xml)
            {
                return Err(ApiError::bad_request(format!(
                    "{what} at /policies: must be a <fragment> XML document or a list of policies"
                ))
                .at("/policies"));
            }
        }
        // Its meaning (URL, files, timeouts) is checked with the bundles.
        Kind::Redis => probe::<RedisSection>(&what, doc.clone())?,
        Kind::Backend => probe::<BackendSection>(&what, doc.clone())?,
        Kind::DosProfile => {
            let mut profile = doc.clone();
            if let Value::Object(map) = &mut profile {
                map.remove("name");
            }
            probe::<DosSection>(&what, profile)?;
        }
        Kind::Subscription => {}
    }
    Ok(doc)
}

/// Checks a backend or DoS profile against the gateway's own types
/// (`gateway_model`), naming the JSON pointer of a problem.
fn probe<T: DeserializeOwned>(what: &str, doc: Value) -> Result<(), ApiError> {
    serde_path_to_error::deserialize::<_, T>(doc)
        .map(drop)
        .map_err(|e| {
            let inner = pointer(e.path());
            let at = if inner.is_empty() {
                String::new()
            } else {
                format!(" at {inner}")
            };
            let message = e.into_inner().to_string();
            ApiError::bad_request(format!(
                "{what}{at}: {}; {}",
                serde_message(&message),
                fix(&message)
            ))
            .at(inner)
        })
}

/// A named value: `{{name}}` in policy settings becomes `value`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "read for its shape; the document is stored as sent"
)]
struct NamedValueDoc {
    /// Referenced as `{{name}}`.
    name: String,
    /// The text substituted: a string (quote numbers: `"5"`), since it
    /// lands inside header values, URLs and bodies.
    value: String,
    /// Secret values are never returned nor logged.
    #[serde(default)]
    secret: bool,
}

/// A policy fragment: policies `include-fragment` expands in place.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "read for its shape; the document is stored as sent"
)]
struct FragmentDoc {
    name: String,
    /// What it is for.
    #[serde(default)]
    description: Option<String>,
    /// A `<fragment>` XML document or a list of policies.
    policies: Value,
}

/// A product: a bundle of APIs that subscriptions are granted to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "read for its shape; the document is stored as sent"
)]
struct ProductDoc {
    name: String,
    /// An open product (false) lets its APIs be called without a key.
    #[serde(default)]
    subscription_required: Option<bool>,
    /// Names of its APIs.
    #[serde(default)]
    apis: Vec<String>,
    /// Product-scope policies.
    #[serde(default)]
    policies: Option<Value>,
}

/// Policies of one scope: each section a list of policies, checked by the
/// gateway when the bundles are assembled.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "read for its shape; the document is stored as sent"
)]
struct PoliciesDoc {
    #[serde(default)]
    inbound: Option<Vec<Value>>,
    #[serde(default)]
    backend: Option<Vec<Value>>,
    #[serde(default)]
    outbound: Option<Vec<Value>>,
    #[serde(default, rename = "on-error")]
    on_error: Option<Vec<Value>>,
}

/// What GET shows of a stored document: secret named values and key
/// hashes stay inside.
pub fn shown(kind: Kind, mut doc: Value) -> Value {
    if let Value::Object(map) = &mut doc {
        match kind {
            Kind::NamedValue if map.get("secret") == Some(&Value::Bool(true)) => {
                map.remove("value");
            }
            Kind::Subscription => {
                map.remove("primary_key_sha256");
                map.remove("secondary_key_sha256");
            }
            _ => {}
        }
    }
    doc
}

/// The name a document is stored under, from its key field.
pub fn name_of(kind: Kind, body: &Value) -> Result<String, ApiError> {
    match body.get(kind.key()) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(ApiError::bad_request(format!(
            "{}: the body needs a \"{}\" string",
            kind.noun(),
            kind.key()
        ))),
    }
}
