//! Catalog resources: list, get, create (POST), create or replace (PUT),
//! delete; the global policies; subscriptions with generated keys.

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use super::{AdminRequest, Answer, method_not_allowed};
use crate::{
    bundle::GLOBAL,
    error::ApiError,
    model::{self, SubscriptionWrite},
    references,
    state::State,
    store::{Kind, resources},
    tokens,
};

pub fn handle(state: &State, req: &AdminRequest, segs: &[&str]) -> Result<Answer, ApiError> {
    match segs {
        // POST is served before the store lane (`super::import`).
        ["apis", "import"] => Err(method_not_allowed(req, "POST")),
        [segment] if Kind::from_segment(segment).is_some_and(Kind::singleton) => {
            singleton(state, req, Kind::from_segment(segment).expect("checked"))
        }
        ["subscriptions", id, "regenerate"] => match req.method {
            Method::POST => regenerate(state, req, id),
            _ => Err(method_not_allowed(req, "POST")),
        },
        [segment] => {
            let kind = kind_of(segment)?;
            match req.method {
                Method::GET => {
                    let docs = state.store.read(|c| resources::list(c, kind))?;
                    let shown: Vec<Value> =
                        docs.into_iter().map(|d| model::shown(kind, d)).collect();
                    Ok((StatusCode::OK, Some(Value::Array(shown))))
                }
                Method::POST => {
                    let body: Value = model::parse(kind.noun(), &req.body)?;
                    let name = model::name_of(kind, &body)?;
                    put(state, kind, &name, body, true)
                }
                _ => Err(method_not_allowed(req, "GET or POST")),
            }
        }
        [segment, name] => {
            let kind = kind_of(segment)?;
            match req.method {
                Method::GET => {
                    let doc = state
                        .store
                        .read(|c| resources::get(c, kind, name))?
                        .ok_or_else(|| not_found(kind, name))?;
                    Ok((StatusCode::OK, Some(model::shown(kind, doc))))
                }
                Method::PUT => {
                    // A fragment may be sent as its `<fragment>` XML document.
                    let body: Value = match std::str::from_utf8(&req.body) {
                        Ok(text) if kind == Kind::Fragment && gateway_model::apim::is_xml(text) => {
                            Value::String(text.to_string())
                        }
                        _ => model::parse(kind.noun(), &req.body)?,
                    };
                    put(state, kind, name, body, false)
                }
                Method::DELETE => {
                    state.write(|tx| {
                        references::check_unused(tx, kind, name)?;
                        if resources::delete(tx, kind, name)? {
                            if kind == Kind::Api {
                                crate::web::docs::delete(tx, name)?;
                            }
                            Ok(())
                        } else {
                            Err(not_found(kind, name))
                        }
                    })?;
                    Ok((StatusCode::NO_CONTENT, None))
                }
                _ => Err(method_not_allowed(req, "GET, PUT or DELETE")),
            }
        }
        _ => Err(route_not_found(req)),
    }
}

fn kind_of(segment: &str) -> Result<Kind, ApiError> {
    Kind::from_segment(segment)
        .filter(|k| !k.singleton())
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no resource \"{segment}\"; resources are apis, products, subscriptions, named-values, fragments, backends, policies, dos-profiles, redis, gateways"
            ))
        })
}

fn route_not_found(req: &AdminRequest) -> ApiError {
    ApiError::not_found(format!(
        "no route /v1/{}; see control-plane/README.md",
        req.segments.join("/")
    ))
}

pub fn not_found(kind: Kind, name: &str) -> ApiError {
    ApiError::not_found(format!("{} \"{name}\" does not exist", kind.noun()))
}

/// Creates (`create_only`: 409 when it exists) or replaces a document.
pub fn put(
    state: &State,
    kind: Kind,
    name: &str,
    body: Value,
    create_only: bool,
) -> Result<Answer, ApiError> {
    if kind == Kind::Subscription {
        return put_subscription(state, name, body, create_only);
    }
    let doc = model::normalise(kind, name, body)?;
    let created = state.write(|tx| {
        if create_only && resources::get(tx, kind, name)?.is_some() {
            return Err(ApiError::conflict(format!(
                "{} \"{name}\" already exists; replace it with PUT /v1/{}/{name}",
                kind.noun(),
                kind.segment()
            )));
        }
        Ok(resources::put(tx, kind, name, &doc)?)
    })?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Some(model::shown(kind, doc))))
}

/// The global policies and the Redis settings: one document each.
fn singleton(state: &State, req: &AdminRequest, kind: Kind) -> Result<Answer, ApiError> {
    match req.method {
        Method::GET => {
            let doc = state.store.read(|c| resources::get(c, kind, GLOBAL))?;
            match (doc, kind) {
                (Some(doc), _) => Ok((StatusCode::OK, Some(doc))),
                (None, Kind::Policies) => Ok((StatusCode::OK, Some(json!({})))),
                (None, _) => Err(ApiError::not_found(format!(
                    "no {} set; PUT /v1/{} to set them",
                    kind.noun(),
                    kind.segment()
                ))),
            }
        }
        Method::PUT => {
            // The global policies may be an APIM `<policies>` XML document.
            let body: Value = match std::str::from_utf8(&req.body) {
                Ok(text) if kind == Kind::Policies && gateway_model::apim::is_xml(text) => {
                    Value::String(text.to_string())
                }
                _ => model::parse(kind.noun(), &req.body)?,
            };
            put(state, kind, GLOBAL, body, false)
        }
        Method::DELETE => {
            state.write(|tx| Ok(resources::delete(tx, kind, GLOBAL)?))?;
            Ok((StatusCode::NO_CONTENT, None))
        }
        _ => Err(method_not_allowed(req, "GET, PUT or DELETE")),
    }
}

/// A new subscription key: shown once, stored as its SHA-256. Hex, like
/// the managed product's keys: safe in shells, URLs and headers (a base64
/// key may start with '-' and read as an option on a command line).
pub fn new_key() -> (String, String) {
    let key = gateway_model::keys::to_hex(&tokens::random_bytes(24));
    let hash = gateway_model::keys::to_hex(&gateway_model::keys::hash_key(&key));
    (key, hash)
}

fn put_subscription(
    state: &State,
    id: &str,
    mut body: Value,
    create_only: bool,
) -> Result<Answer, ApiError> {
    let kind = Kind::Subscription;
    model::check_name(kind.noun(), id)?;
    if let Value::Object(map) = &mut body {
        map.entry("id").or_insert_with(|| json!(id));
    }
    let write: SubscriptionWrite = model::shape(&format!("subscription \"{id}\""), body)?;
    if write.id != id {
        return Err(ApiError::bad_request(format!(
            "subscription \"{id}\": the body's \"id\" (\"{}\") differs from the id in the path; make them equal or omit it",
            write.id
        )));
    }
    let mut doc = json!({"id": id, "scope": write.scope});
    if let Some(s) = &write.state {
        doc["state"] = json!(s);
    }
    let (created, keys) = state.write(|tx| {
        let old = resources::get(tx, kind, id)?;
        if create_only && old.is_some() {
            return Err(ApiError::conflict(format!(
                "subscription \"{id}\" already exists; replace it with PUT /v1/subscriptions/{id}"
            )));
        }
        let keys = match &old {
            Some(old) => {
                doc["primary_key_sha256"] = old["primary_key_sha256"].clone();
                doc["secondary_key_sha256"] = old["secondary_key_sha256"].clone();
                None
            }
            None => {
                let (primary, p_hash) = new_key();
                let (secondary, s_hash) = new_key();
                doc["primary_key_sha256"] = json!(p_hash);
                doc["secondary_key_sha256"] = json!(s_hash);
                Some((primary, secondary))
            }
        };
        resources::put(tx, kind, id, &doc)?;
        Ok((old.is_none(), keys))
    })?;
    let mut shown = model::shown(kind, doc);
    if let Some((primary, secondary)) = keys {
        shown["primary_key"] = json!(primary);
        shown["secondary_key"] = json!(secondary);
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Some(shown)))
}

fn regenerate(state: &State, req: &AdminRequest, id: &str) -> Result<Answer, ApiError> {
    regenerate_key(state, id, &req.query("key").unwrap_or_default())
}

/// A new primary or secondary key for subscription `id`, shown once.
pub fn regenerate_key(state: &State, id: &str, which: &str) -> Result<Answer, ApiError> {
    let field = match which {
        "primary" => "primary_key",
        "secondary" => "secondary_key",
        _ => {
            return Err(ApiError::bad_request(format!(
                "key={which:?}: say which key to regenerate with ?key=primary or ?key=secondary"
            )));
        }
    };
    let (key, hash) = new_key();
    state.write(|tx| {
        let mut doc = resources::get(tx, Kind::Subscription, id)?
            .ok_or_else(|| not_found(Kind::Subscription, id))?;
        doc[format!("{field}_sha256")] = json!(hash);
        resources::put(tx, Kind::Subscription, id, &doc)?;
        Ok(())
    })?;
    Ok((StatusCode::OK, Some(json!({"id": id, field: key}))))
}
