//! Gateways: registration with their APIs and DoS profile, tokens (issue,
//! rotate, signing-key rotation), and their status from heartbeats.

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminRequest, Answer, method_not_allowed};
use crate::{
    clock,
    error::ApiError,
    fleet,
    model::{self, GatewayWrite},
    state::State,
    store::{
        Conn,
        gateways::{self, Gateway},
    },
    tokens,
};

/// Body of `POST /v1/gateways/{name}/token` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    /// Token lifetime in seconds (default `--token-ttl`).
    #[serde(default)]
    ttl_secs: Option<u64>,
}

pub fn handle(state: &State, req: &AdminRequest, segs: &[&str]) -> Result<Answer, ApiError> {
    match (&req.method, segs) {
        (&Method::POST, ["signing-key", "rotate"]) => {
            state.write(|tx| Ok(tokens::rotate_signing_key(tx)?))?;
            Ok((
                StatusCode::OK,
                Some(json!({
                    "rotated": true,
                    "message": "every gateway token issued so far is now invalid; issue new ones with POST /v1/gateways/NAME/token"
                })),
            ))
        }
        (&Method::GET, ["gateways"]) => {
            let list = state.store.read(|c| {
                gateways::list(c)?
                    .into_iter()
                    .map(|g| view(c, g, false))
                    .collect::<Result<Vec<_>, ApiError>>()
            })?;
            Ok((StatusCode::OK, Some(Value::Array(list))))
        }
        (&Method::POST, ["gateways"]) => {
            let write: GatewayWrite = model::parse("gateway", &req.body)?;
            let name = write.name.clone();
            register(state, &name, write, true)
        }
        (_, ["gateways"]) => Err(method_not_allowed(req, "GET or POST")),
        (&Method::GET, ["gateways", name]) => {
            let out = state.store.read(|c| {
                let gw = gateways::get(c, name)?.ok_or_else(|| not_found(name))?;
                view(c, gw, true)
            })?;
            Ok((StatusCode::OK, Some(out)))
        }
        (&Method::PUT, ["gateways", name]) => {
            let mut body: Value = model::parse("gateway", &req.body)?;
            if let Value::Object(map) = &mut body {
                map.entry("name").or_insert_with(|| json!(name));
            }
            let write: GatewayWrite = model::shape(&format!("gateway \"{name}\""), body)?;
            if write.name != *name {
                return Err(ApiError::bad_request(format!(
                    "gateway \"{name}\": the body's \"name\" (\"{}\") differs from the name in the path; make them equal or omit it",
                    write.name
                )));
            }
            register(state, name, write, false)
        }
        (&Method::DELETE, ["gateways", name]) => {
            state.write(|tx| {
                if gateways::delete(tx, name)? {
                    Ok(())
                } else {
                    Err(not_found(name))
                }
            })?;
            Ok((StatusCode::NO_CONTENT, None))
        }
        (_, ["gateways", _]) => Err(method_not_allowed(req, "GET, PUT or DELETE")),
        (&Method::POST, ["gateways", name, "token"]) => {
            let request: TokenRequest = if req.body.is_empty() {
                TokenRequest::default()
            } else {
                model::parse("token request", &req.body)?
            };
            let ttl = ttl(state, request.ttl_secs)?;
            let issued = state.write(|tx| {
                gateways::get(tx, name)?.ok_or_else(|| not_found(name))?;
                let token_id = tokens::random(12);
                gateways::set_token_id(tx, name, &token_id)?;
                Ok(tokens::issue(tx, name, &token_id, ttl)?)
            })?;
            Ok((StatusCode::OK, Some(json!(issued))))
        }
        _ => Err(ApiError::not_found(format!(
            "no route {} /v1/{}; see control-plane/README.md",
            req.method,
            req.segments.join("/")
        ))),
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "gateway \"{name}\" does not exist; register it with POST /v1/gateways"
    ))
}

fn ttl(state: &State, requested: Option<u64>) -> Result<u64, ApiError> {
    match requested {
        None => Ok(state.token_ttl),
        Some(0) => Err(ApiError::bad_request(
            "ttl_secs must be at least 1 (seconds)",
        )),
        Some(secs) if secs > 10 * 366 * 86_400 => Err(ApiError::bad_request(
            "ttl_secs must be at most 10 years; rotate tokens instead",
        )),
        Some(secs) => Ok(secs),
    }
}

/// Creates a gateway (answering its first token) or, for PUT on an
/// existing one, replaces its assignment.
fn register(
    state: &State,
    name: &str,
    write: GatewayWrite,
    create_only: bool,
) -> Result<Answer, ApiError> {
    model::check_name("gateway", name)?;
    for api in &write.apis {
        model::check_name("api", api)?;
    }
    if let Some(p) = &write.dos_profile {
        model::check_name("dos profile", p)?;
    }
    let ttl = ttl(state, write.ttl_secs)?;
    let issued = state.write(|tx| {
        match gateways::get(tx, name)? {
            Some(_) if create_only => Err(ApiError::conflict(format!(
                "gateway \"{name}\" already exists; change it with PUT /v1/gateways/{name} or rotate its token with POST /v1/gateways/{name}/token"
            ))),
            Some(_) if write.ttl_secs.is_some() => Err(ApiError::bad_request(format!(
                "gateway \"{name}\": ttl_secs applies when a gateway is created; issue a token with POST /v1/gateways/{name}/token {{\"ttl_secs\": N}}"
            ))),
            Some(_) => {
                gateways::set_assignment(tx, name, &write.apis, write.dos_profile.as_deref())?;
                Ok(None)
            }
            None => {
                let token_id = tokens::random(12);
                gateways::insert(
                    tx,
                    &Gateway {
                        name: name.into(),
                        apis: write.apis.clone(),
                        dos_profile: write.dos_profile.clone(),
                        token_id: token_id.clone(),
                        bundle_hash: String::new(),
                        base_hash: String::new(),
                        version: 0,
                    },
                )?;
                Ok(Some(tokens::issue(tx, name, &token_id, ttl)?))
            }
        }
    })?;
    let mut out = state.store.read(|c| {
        let gw = gateways::get(c, name)?.ok_or_else(|| not_found(name))?;
        view(c, gw, false)
    })?;
    let status = match issued {
        Some(issued) => {
            out["token"] = json!(issued.token);
            out["expires_at"] = json!(issued.expires_at);
            StatusCode::CREATED
        }
        None => StatusCode::OK,
    };
    Ok((status, Some(out)))
}

/// A gateway as the API shows it: assignment, the version it should run,
/// its last heartbeat (and, in detail, its own current quota usage).
fn view(conn: &Conn, gw: Gateway, detail: bool) -> Result<Value, ApiError> {
    let heartbeat = gateways::status(conn, &gw.name)?.map(|s| {
        let mut hb = s.reported;
        hb["last_seen"] = json!(clock::rfc3339(s.last_seen));
        hb["last_seen_secs_ago"] = json!((clock::now() - s.last_seen).max(0));
        hb
    });
    let mut out = json!({
        "name": gw.name,
        "apis": gw.apis,
        "dos_profile": gw.dos_profile,
        "desired_version": gw.version,
        "heartbeat": heartbeat,
    });
    if detail {
        out["usage"] = json!(fleet::usage_of(conn, &gw.name)?);
    }
    Ok(out)
}
