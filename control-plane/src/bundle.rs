//! Assembles each gateway's bundle (`docs/sync-protocol.md`) from the
//! store and validates it with the gateway's own `Bundle::parse` +
//! `Bundle::check` before a write commits. A gateway's bundle holds only
//! its assigned APIs (products and subscriptions are narrowed to them),
//! the backends they use, and its DoS profile. Unassigned APIs are checked
//! in a virtual bundle that holds everything, each DoS profile on its own.
//!
//! A gateway's version is the store revision at which its bundle content
//! last changed, so writes that do not touch a gateway do not wake it.

use std::collections::{BTreeMap, HashMap, HashSet};

use edgegw::config::Bundle;
use ring::digest;
use rusqlite::Connection;
use serde_json::{Map, Value, json};

use crate::{
    error::ApiError,
    model::ApiDoc,
    store::{Kind, gateways, resources},
};

/// Everything bundles are assembled from, read once per write.
struct Sources {
    apis: Vec<ApiDoc>,
    products: Vec<Value>,
    subscriptions: Vec<Value>,
    named_values: Vec<Value>,
    backends: Vec<Value>,
    policies: Option<Value>,
    dos_profiles: BTreeMap<String, Value>,
}

impl Sources {
    fn load(conn: &Connection) -> Result<Sources, ApiError> {
        let apis = resources::list(conn, Kind::Api)?
            .into_iter()
            .filter_map(|doc| serde_json::from_value(doc).ok())
            .collect();
        let dos_profiles = resources::list(conn, Kind::DosProfile)?
            .into_iter()
            .map(|mut doc| {
                let name = doc
                    .as_object_mut()
                    .and_then(|m| m.remove("name"))
                    .and_then(|n| n.as_str().map(String::from))
                    .unwrap_or_default();
                (name, doc)
            })
            .collect();
        Ok(Sources {
            apis,
            products: resources::list(conn, Kind::Product)?,
            subscriptions: resources::list(conn, Kind::Subscription)?,
            named_values: resources::list(conn, Kind::NamedValue)?,
            backends: resources::list(conn, Kind::Backend)?,
            policies: resources::get(conn, Kind::Policies, GLOBAL)?,
            dos_profiles,
        })
    }

    /// A bundle's content (everything but `version`) for the APIs in
    /// `only` (all when `None`) and a DoS profile.
    fn assemble(&self, only: Option<&[String]>, dos: Option<&Value>) -> Value {
        let included = |api: &str| only.is_none_or(|names| names.iter().any(|n| n == api));
        let apis: Vec<&ApiDoc> = self.apis.iter().filter(|a| included(&a.name)).collect();
        let gateway_apis: Vec<Value> = apis.iter().map(|a| gateway_section(a)).collect();
        let catalog_apis: Vec<Value> = apis.iter().map(|a| catalog_entry(a)).collect();
        let backends: Vec<&Value> = self
            .backends
            .iter()
            .filter(|b| {
                only.is_none()
                    || apis
                        .iter()
                        .any(|a| Some(a.backend.as_str()) == b["name"].as_str())
            })
            .collect();
        let products: Vec<Value> = self
            .products
            .iter()
            .map(|p| {
                let mut p = p.clone();
                if let Some(Value::Array(list)) = p.get_mut("apis") {
                    list.retain(|a| a.as_str().is_none_or(included));
                }
                p
            })
            .collect();
        let subscriptions: Vec<&Value> = self
            .subscriptions
            .iter()
            .filter(
                |s| match s["scope"].as_str().and_then(|s| s.strip_prefix("api:")) {
                    Some(api) => included(api),
                    None => true,
                },
            )
            .collect();
        let mut catalog = Map::new();
        catalog.insert("named_values".into(), json!(self.named_values));
        if let Some(p) = &self.policies {
            catalog.insert("policies".into(), p.clone());
        }
        catalog.insert("apis".into(), json!(catalog_apis));
        catalog.insert("products".into(), json!(products));
        catalog.insert("subscriptions".into(), json!(subscriptions));
        let mut content = Map::new();
        content.insert("apis".into(), json!(gateway_apis));
        content.insert("backends".into(), json!(backends));
        content.insert("catalog".into(), Value::Object(catalog));
        if let Some(dos) = dos {
            content.insert("dos".into(), dos.clone());
        }
        Value::Object(content)
    }
}

/// The name the global policies are stored under.
pub const GLOBAL: &str = "global";

/// The gateway file's `[[apis]]` entry of an API.
fn gateway_section(api: &ApiDoc) -> Value {
    let mut out = json!({"name": api.name, "path": api.path, "backend": api.backend});
    if let Some(host) = &api.host {
        out["host"] = json!(host);
    }
    if api.websocket {
        out["websocket"] = json!(true);
    }
    if let Some(slashes) = &api.encoded_slashes {
        out["encoded_slashes"] = json!(slashes);
    }
    out["operations"] = api
        .operations
        .iter()
        .map(|op| {
            let mut o = json!({"name": op.name, "method": op.method, "url": op.url});
            if let Some(ws) = op.websocket {
                o["websocket"] = json!(ws);
            }
            o
        })
        .collect();
    out
}

/// The catalog's `apis` entry of an API.
fn catalog_entry(api: &ApiDoc) -> Value {
    let mut out = json!({"name": api.name, "subscription_required": api.subscription_required});
    if let Some(keys) = &api.subscription_key {
        out["subscription_key"] = keys.clone();
    }
    if let Some(p) = &api.policies {
        out["policies"] = p.clone();
    }
    out["operations"] = api
        .operations
        .iter()
        .filter_map(|op| {
            op.policies
                .as_ref()
                .map(|p| json!({"name": op.name, "policies": p}))
        })
        .collect();
    out
}

/// `content` with `version` first, as served.
fn versioned(version: u64, content: &Value) -> String {
    let mut out = Map::new();
    out.insert("version".into(), json!(version));
    if let Value::Object(fields) = content {
        out.extend(fields.clone());
    }
    Value::Object(out).to_string()
}

/// The gateway names its origin twice for catalog problems
/// ("control plane configuration: control plane configuration: catalog:
/// ..."); once is enough.
fn one_origin(message: &str) -> String {
    const ORIGIN: &str = "control plane configuration: ";
    let mut out = message;
    while out.starts_with(&ORIGIN.repeat(2)) {
        out = &out[ORIGIN.len()..];
    }
    out.to_string()
}

fn sha256_hex(text: &str) -> String {
    digest::digest(&digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Validates every bundle the store can produce and records the bundles of
/// gateways whose content changed at `revision`. Runs inside the write's
/// transaction: an error rolls the whole write back.
pub fn refresh(conn: &Connection, revision: u64) -> Result<(), ApiError> {
    let sources = Sources::load(conn)?;
    // Gateways with the same assignment have the same content: check once.
    let mut checked = HashSet::new();
    let mut check = |context: &str, content: &Value| -> Result<String, ApiError> {
        let text = content.to_string();
        let hash = sha256_hex(&text);
        if checked.insert(hash.clone()) {
            Bundle::parse(&versioned(0, content))
                .and_then(|b| b.check())
                .map_err(|e| {
                    ApiError::invalid(format!("{context}{}", one_origin(&e.to_string())))
                })?;
        }
        Ok(hash)
    };
    check("", &sources.assemble(None, None))?;
    for (name, profile) in &sources.dos_profiles {
        check(
            &format!("dos profile \"{name}\": "),
            &json!({"dos": profile}),
        )?;
    }
    // Many gateways share an assignment: assemble each one once.
    let mut assembled: HashMap<(Vec<String>, Option<String>), (String, Value)> = HashMap::new();
    for gw in gateways::list(conn)? {
        let at = format!("gateway \"{}\": ", gw.name);
        let key = (gw.apis.clone(), gw.dos_profile.clone());
        if !assembled.contains_key(&key) {
            for api in &gw.apis {
                if !sources.apis.iter().any(|a| a.name == *api) {
                    return Err(ApiError::invalid(format!(
                        "{at}api \"{api}\" does not exist; create it first (PUT /v1/apis/{api})"
                    )));
                }
            }
            let dos = match &gw.dos_profile {
                Some(p) => Some(sources.dos_profiles.get(p).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "{at}dos profile \"{p}\" does not exist; create it first (PUT /v1/dos-profiles/{p})"
                    ))
                })?),
                None => None,
            };
            let content = sources.assemble(Some(&gw.apis), dos);
            let hash = check(&at, &content)?;
            assembled.insert(key.clone(), (hash, content));
        }
        let (hash, content) = &assembled[&key];
        if *hash != gw.bundle_hash {
            gateways::set_bundle(
                conn,
                &gw.name,
                hash,
                &versioned(revision, content),
                revision,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-API request settings reach the gateway's `[[apis]]` entry:
    /// without them a managed gateway would refuse every WebSocket.
    #[test]
    fn gateway_section_carries_websocket_and_encoded_slashes() {
        let api: ApiDoc = serde_json::from_value(json!({
            "name": "chat", "path": "/chat", "backend": "http://b:1",
            "websocket": true, "encoded_slashes": "keep",
            "operations": [
                {"name": "ws", "method": "GET", "url": "/ws"},
                {"name": "poll", "method": "GET", "url": "/poll", "websocket": false}
            ]
        }))
        .unwrap();
        let out = gateway_section(&api);
        assert_eq!(out["websocket"], json!(true));
        assert_eq!(out["encoded_slashes"], json!("keep"));
        assert_eq!(out["operations"][0].get("websocket"), None);
        assert_eq!(out["operations"][1]["websocket"], json!(false));

        let plain: ApiDoc =
            serde_json::from_value(json!({"name": "a", "path": "/a", "backend": "http://b:1"}))
                .unwrap();
        let out = gateway_section(&plain);
        assert_eq!(out.get("websocket"), None);
        assert_eq!(out.get("encoded_slashes"), None);
    }
}
