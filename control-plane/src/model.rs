//! The documents the management API accepts: checked for shape here
//! (unknown fields, names), for meaning by the gateway's own validation
//! when the bundles are assembled (`crate::bundle`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{error::ApiError, store::Kind};

/// The longest resource name.
pub const MAX_NAME: usize = 64;

/// Names are 1..=64 of `A-Z a-z 0-9 . _ -`: safe in paths, logs, counter
/// keys and file names on every side.
pub fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{what} name {name:?} is not allowed: use 1 to {MAX_NAME} characters among A-Z a-z 0-9 . _ -"
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
    pub subscription_key: Option<Value>,
    /// API-scope policies (`inbound`, `backend`, `outbound`, `on-error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Value>,
    /// Operations; none: every request under the path is accepted.
    #[serde(default)]
    pub operations: Vec<OperationDoc>,
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

/// Parses a JSON body into `T`, naming the problem on one line.
pub fn parse<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("{what}: invalid JSON body: {e}")))
}

/// Checks a document's shape and fills its name from the path: returns
/// the document to store. Meaning is checked later, on the whole bundle.
pub fn normalise(kind: Kind, name: &str, body: Value) -> Result<Value, ApiError> {
    let what = format!("{} \"{name}\"", kind.noun());
    let Value::Object(mut doc) = body else {
        return Err(ApiError::bad_request(format!(
            "{what}: the body must be a JSON object"
        )));
    };
    if kind == Kind::Policies {
        return Ok(Value::Object(doc));
    }
    check_name(kind.noun(), name)?;
    match doc.get(kind.key()) {
        None => {
            doc.insert(kind.key().into(), Value::String(name.into()));
        }
        Some(Value::String(s)) if s == name => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "{what}: the body's \"{}\" ({other}) differs from the name in the path; make them equal or omit it",
                kind.key()
            )));
        }
    }
    if kind == Kind::Api {
        let api: ApiDoc = serde_json::from_value(Value::Object(doc))
            .map_err(|e| ApiError::bad_request(format!("{what}: {e}")))?;
        for op in &api.operations {
            check_name(&format!("{what}: operation"), &op.name)?;
        }
        return Ok(serde_json::to_value(api).expect("documents serialise"));
    }
    Ok(Value::Object(doc))
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
