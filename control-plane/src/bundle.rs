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

use gateway_model::{
    catalog::file::{
        ApiFile, CatalogFile, FragmentFile, NamedValueFile, OperationFile, ProductFile,
        SubscriptionFile,
    },
    config::{
        ApiSection, BackendSection, Bundle, BundleDelta, DosSection, OperationSection, RedisSection,
    },
};
use ring::digest;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    error::ApiError,
    model::ApiDoc,
    store::{Conn, Kind, gateways, resources},
};

/// Everything bundles are assembled from, read once per write, as the
/// model's types.
struct Sources {
    apis: Vec<ApiDoc>,
    products: Vec<ProductFile>,
    subscriptions: Vec<SubscriptionFile>,
    named_values: Vec<NamedValueFile>,
    fragments: Vec<FragmentFile>,
    backends: Vec<BackendSection>,
    policies: Option<serde_yaml::Value>,
    dos_profiles: BTreeMap<String, DosSection>,
    redis: Option<RedisSection>,
}

/// A stored document of `kind` as `T`; the store holds only documents
/// whose shape was checked when written.
fn typed<T: DeserializeOwned>(kind: Kind, doc: Value) -> Result<T, ApiError> {
    serde_json::from_value(doc).map_err(|e| {
        ApiError::invalid(format!(
            "a stored {} does not have the shape the gateway reads: {e}; write it again",
            kind.noun()
        ))
    })
}

/// Every stored document of `kind`, as `T`.
fn all<T: DeserializeOwned>(conn: &Conn, kind: Kind) -> Result<Vec<T>, ApiError> {
    resources::list(conn, kind)?
        .into_iter()
        .map(|doc| typed(kind, doc))
        .collect()
}

impl Sources {
    fn load(conn: &Conn) -> Result<Sources, ApiError> {
        let apis = resources::list(conn, Kind::Api)?
            .into_iter()
            .filter_map(|doc| serde_json::from_value(doc).ok())
            .collect();
        let mut dos_profiles = BTreeMap::new();
        for mut doc in resources::list(conn, Kind::DosProfile)? {
            let name = doc
                .as_object_mut()
                .and_then(|m| m.remove("name"))
                .and_then(|n| n.as_str().map(String::from))
                .unwrap_or_default();
            dos_profiles.insert(name, typed(Kind::DosProfile, doc)?);
        }
        let policies = resources::get(conn, Kind::Policies, GLOBAL)?
            .map(|p| yaml_value(&p))
            .transpose()?;
        Ok(Sources {
            apis,
            products: all(conn, Kind::Product)?,
            subscriptions: all(conn, Kind::Subscription)?,
            named_values: all(conn, Kind::NamedValue)?,
            fragments: all(conn, Kind::Fragment)?,
            backends: all(conn, Kind::Backend)?,
            policies,
            dos_profiles,
            redis: resources::get(conn, Kind::Redis, GLOBAL)?
                .map(|doc| typed(Kind::Redis, doc))
                .transpose()?,
        })
    }

    /// A bundle (version 0) for the APIs in `only` (all when `None`) and
    /// a DoS profile.
    fn assemble(
        &self,
        only: Option<&[String]>,
        dos: Option<&DosSection>,
    ) -> Result<Assembled, ApiError> {
        let included = |api: &str| only.is_none_or(|names| names.iter().any(|n| n == api));
        let apis: Vec<&ApiDoc> = self.apis.iter().filter(|a| included(&a.name)).collect();
        let products = self
            .products
            .iter()
            .map(|p| ProductFile {
                apis: p.apis.iter().filter(|a| included(a)).cloned().collect(),
                ..p.clone()
            })
            .collect();
        let subscriptions = self
            .subscriptions
            .iter()
            .filter(|s| s.scope.strip_prefix("api:").is_none_or(included))
            .cloned()
            .collect();
        let mut catalog = CatalogFile {
            named_values: self.named_values.clone(),
            fragments: self.fragments.clone(),
            policies: self.policies.clone(),
            apis: apis
                .iter()
                .map(|a| catalog_entry(a))
                .collect::<Result<_, _>>()?,
            products,
            subscriptions: Vec::new(),
            // Named certificates live in a node's catalog file only.
            certificates: Vec::new(),
        };
        // The APIs' own backends and those a policy of this bundle names
        // (`set-backend-service backend-id`): a node refuses a catalog
        // naming a backend it does not have, and is not sent the others.
        let mut referenced = HashSet::new();
        backend_ids(
            &serde_json::to_value(&catalog).expect("catalogs serialise"),
            &mut referenced,
        );
        let backends = self
            .backends
            .iter()
            .filter(|b| {
                only.is_none()
                    || referenced.contains(b.name.as_str())
                    || apis.iter().any(|a| a.backend == b.name)
            })
            .cloned()
            .collect();
        let raw = |c: &CatalogFile| serde_json::value::to_raw_value(c).expect("catalogs serialise");
        let mut content = Bundle {
            version: 0,
            apis: apis.iter().map(|a| gateway_section(a)).collect(),
            backends,
            catalog: Some(raw(&catalog)),
            dos: dos.cloned(),
            redis: self.redis.clone(),
        };
        let base_hash = sha256_hex(&versioned(0, &content));
        catalog.subscriptions = subscriptions;
        content.catalog = Some(raw(&catalog));
        Ok(Assembled {
            content,
            base_hash,
            subscriptions: catalog.subscriptions,
        })
    }
}

/// A gateway's bundle content (version 0), with what a delta needs.
struct Assembled {
    content: Bundle,
    /// Hash of `content` without the catalog's subscriptions: when it is
    /// unchanged, a gateway is sent only the change of subscriptions.
    base_hash: String,
    subscriptions: Vec<SubscriptionFile>,
}

/// The most subscriptions a delta carries; a larger change is sent as a
/// whole bundle (it costs the gateway a rebuild either way).
const MAX_DELTA: usize = 1000;

/// The change of subscriptions from `gw`'s current bundle to `new`, as
/// served JSON, when nothing else changed; empty otherwise. The old
/// subscriptions are read once per old bundle (`old_lists`): gateways with
/// the same assignment share it.
fn delta_for(
    conn: &Conn,
    gw: &gateways::Gateway,
    revision: u64,
    new: &Assembled,
    old_lists: &mut HashMap<String, Vec<SubscriptionFile>>,
) -> Result<String, ApiError> {
    if gw.version == 0 || gw.base_hash.is_empty() || gw.base_hash != new.base_hash {
        return Ok(String::new());
    }
    if !old_lists.contains_key(&gw.bundle_hash) {
        /// Only the subscriptions of a stored bundle; the rest is skipped.
        #[derive(serde::Deserialize)]
        struct Old {
            catalog: Option<OldCatalog>,
        }
        #[derive(serde::Deserialize)]
        struct OldCatalog {
            #[serde(default)]
            subscriptions: Vec<SubscriptionFile>,
        }
        let Some((_, text)) = gateways::bundle(conn, &gw.name)? else {
            return Ok(String::new());
        };
        let Ok(old) = serde_json::from_str::<Old>(&text) else {
            return Ok(String::new());
        };
        let list = old.catalog.map(|c| c.subscriptions).unwrap_or_default();
        old_lists.insert(gw.bundle_hash.clone(), list);
    }
    let delta = BundleDelta::between(
        gw.version,
        revision,
        &old_lists[&gw.bundle_hash],
        &new.subscriptions,
    );
    if delta.upsert.len() + delta.delete.len() > MAX_DELTA {
        return Ok(String::new());
    }
    Ok(serde_json::to_string(&delta).expect("deltas serialise"))
}

/// Every API checked on its own, with its policies, the backends and the
/// named values: the gateway's validation stops at the first API it
/// refuses, while a declarative apply lists every problem. Each message as
/// `refresh` words it.
pub fn api_problems(conn: &Conn) -> Result<Vec<String>, ApiError> {
    let sources = Sources::load(conn)?;
    let mut out = Vec::new();
    for api in &sources.apis {
        let catalog = CatalogFile {
            named_values: sources.named_values.clone(),
            fragments: sources.fragments.clone(),
            policies: None,
            apis: vec![catalog_entry(api)?],
            products: Vec::new(),
            subscriptions: Vec::new(),
            certificates: Vec::new(),
        };
        let bundle = Bundle {
            apis: vec![gateway_section(api)],
            backends: sources.backends.clone(),
            catalog: Some(serde_json::value::to_raw_value(&catalog).expect("catalogs serialise")),
            ..Bundle::default()
        };
        if let Err(e) = bundle.check() {
            out.push(one_origin(&e.to_string()));
        }
    }
    Ok(out)
}

/// The name the global policies are stored under.
pub const GLOBAL: &str = "global";

/// Policies as the catalog file holds them.
fn yaml_value(policies: &Value) -> Result<serde_yaml::Value, ApiError> {
    serde_yaml::to_value(policies)
        .map_err(|e| ApiError::invalid(format!("policies cannot be read as a catalog's: {e}")))
}

/// The gateway file's `[[apis]]` entry of an API.
fn gateway_section(api: &ApiDoc) -> ApiSection {
    ApiSection {
        name: api.name.clone(),
        path: api.path.clone(),
        host: api.host.clone(),
        backend: api.backend.clone(),
        operations: api
            .operations
            .iter()
            .map(|op| OperationSection {
                name: op.name.clone(),
                method: op.method.clone(),
                url: op.url.clone(),
                websocket: op.websocket,
            })
            .collect(),
        websocket: api.websocket,
        encoded_slashes: api.encoded_slashes.clone(),
    }
}

/// The catalog's `apis` entry of an API.
fn catalog_entry(api: &ApiDoc) -> Result<ApiFile, ApiError> {
    let operations = api
        .operations
        .iter()
        .filter_map(|op| {
            op.policies.as_ref().map(|p| {
                Ok(OperationFile {
                    name: op.name.clone(),
                    policies: Some(yaml_value(p)?),
                })
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(ApiFile {
        name: api.name.clone(),
        subscription_required: api.subscription_required,
        subscription_key: api.subscription_key.clone().unwrap_or_default(),
        policies: api.policies.as_ref().map(yaml_value).transpose()?,
        operations,
    })
}

/// Every backend a policy in `doc` names: `backend_id` settings of
/// YAML policies and `backend-id` attributes in APIM XML text.
fn backend_ids(doc: &Value, out: &mut HashSet<String>) {
    match doc {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("backend_id", Value::String(id)) => {
                        out.insert(id.clone());
                    }
                    _ => backend_ids(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| backend_ids(v, out)),
        Value::String(text) => {
            for (at, _) in text.match_indices("backend-id") {
                let rest = text[at + "backend-id".len()..].trim_start();
                let Some(rest) = rest.strip_prefix('=').map(str::trim_start) else {
                    continue;
                };
                let mut chars = rest.chars();
                let Some(quote @ ('"' | '\'')) = chars.next() else {
                    continue;
                };
                if let Some((id, _)) = chars.as_str().split_once(quote) {
                    out.insert(id.to_string());
                }
            }
        }
        _ => {}
    }
}

/// The bundle's text at `version`, as served.
fn versioned(version: u64, bundle: &Bundle) -> String {
    let bundle = Bundle {
        version,
        ..bundle.clone()
    };
    serde_json::to_string(&bundle).expect("bundles serialise")
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
pub fn refresh(conn: &Conn, revision: u64) -> Result<(), ApiError> {
    let sources = Sources::load(conn)?;
    // Gateways with the same assignment have the same content: check once.
    let mut checked = HashSet::new();
    let mut check = |context: &str, content: &Bundle| -> Result<String, ApiError> {
        let hash = sha256_hex(&versioned(0, content));
        if checked.insert(hash.clone()) {
            content.check().map_err(|e| {
                ApiError::invalid(format!("{context}{}", one_origin(&e.to_string())))
            })?;
        }
        Ok(hash)
    };
    check("", &sources.assemble(None, None)?.content)?;
    for (name, profile) in &sources.dos_profiles {
        let only_dos = Bundle {
            dos: Some(profile.clone()),
            ..Bundle::default()
        };
        check(&format!("dos profile \"{name}\": "), &only_dos)?;
    }
    // Many gateways share an assignment: assemble each one once.
    let mut assembled: HashMap<(Vec<String>, Option<String>), (String, Assembled)> = HashMap::new();
    let mut old_lists = HashMap::new();
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
            let new = sources.assemble(Some(&gw.apis), dos)?;
            let hash = check(&at, &new.content)?;
            assembled.insert(key.clone(), (hash, new));
        }
        let (hash, new) = &assembled[&key];
        if *hash != gw.bundle_hash {
            let delta = delta_for(conn, &gw, revision, new, &mut old_lists)?;
            let bundle = gateways::NewBundle {
                hash,
                base_hash: &new.base_hash,
                text: &versioned(revision, &new.content),
                delta: &delta,
            };
            gateways::set_bundle(conn, &gw.name, &bundle, revision)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Backend names a policy sends requests to, in YAML and in APIM XML
    /// with either quote and spaces around `=`; other text names none.
    #[test]
    fn backend_ids_are_found_in_yaml_and_xml_policies() {
        let cases: &[(Value, &[&str])] = &[
            (
                serde_json::json!({"set-backend-service": {"backend_id": "a"}}),
                &["a"],
            ),
            (
                serde_json::json!([{"inbound": [{"x": {"backend_id": "b"}}]}]),
                &["b"],
            ),
            (
                serde_json::json!("<set-backend-service backend-id=\"c\" />"),
                &["c"],
            ),
            (
                serde_json::json!(
                    "<set-backend-service backend-id = 'd' /><set-backend-service backend-id=\"e\"/>"
                ),
                &["d", "e"],
            ),
            (
                serde_json::json!("<set-backend-service base-url=\"http://x\" />"),
                &[],
            ),
            (
                serde_json::json!("backend-id is mentioned; backend-id= unquoted"),
                &[],
            ),
            (serde_json::json!({"note": "backend-id=\"f"}), &[]),
        ];
        for (doc, want) in cases {
            let mut got = HashSet::new();
            backend_ids(doc, &mut got);
            let want: HashSet<String> = want.iter().map(|s| s.to_string()).collect();
            assert_eq!(got, want, "{doc}");
        }
    }

    /// The per-API request settings reach the gateway's `[[apis]]` entry:
    /// without them a managed gateway would refuse every WebSocket.
    #[test]
    fn gateway_section_carries_websocket_and_encoded_slashes() {
        let api: ApiDoc = serde_json::from_value(serde_json::json!({
            "name": "chat", "path": "/chat", "backend": "http://b:1",
            "websocket": true, "encoded_slashes": "keep",
            "operations": [
                {"name": "ws", "method": "GET", "url": "/ws"},
                {"name": "poll", "method": "GET", "url": "/poll", "websocket": false}
            ]
        }))
        .unwrap();
        let out = serde_json::to_value(gateway_section(&api)).unwrap();
        assert_eq!(out["websocket"], true);
        assert_eq!(out["encoded_slashes"], "keep");
        assert_eq!(out["operations"][0].get("websocket"), None);
        assert_eq!(out["operations"][1]["websocket"], false);

        let plain: ApiDoc = serde_json::from_value(
            serde_json::json!({"name": "a", "path": "/a", "backend": "http://b:1"}),
        )
        .unwrap();
        let out = serde_json::to_value(gateway_section(&plain)).unwrap();
        assert_eq!(out.get("websocket"), None);
        assert_eq!(out.get("encoded_slashes"), None);
    }
}
