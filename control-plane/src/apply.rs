//! The whole catalog at once, for declarative configuration (CI/CD):
//! `GET /v1/catalog` reads every resource in one read, `POST
//! /v1/catalog/apply[?dry_run=true][&prune=true]` takes the desired set of
//! resources and makes the store match it in ONE transaction — created,
//! changed, (with `prune`) deleted — validated whole as any write is
//! (`crate::bundle::refresh`). A refusal lists every problem found, each
//! with its resource and JSON pointer, and changes nothing; a dry run
//! validates the same way and rolls back; an apply that changes nothing
//! writes nothing (the revision stays, no gateway wakes).

use std::collections::{BTreeMap, BTreeSet};

use hyper::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    api::new_key,
    bundle::{self, GLOBAL},
    error::ApiError,
    model::{self, SubscriptionWrite},
    state::State,
    store::{self, Conn, DbError, Kind, resources},
};

/// The desired catalog: every resource the folder holds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    pub resources: Vec<DesiredResource>,
}

/// One resource: its kind (`apis`, `products`, ... as in the routes), its
/// name (`id` of a subscription; ignored for `policies` and `redis`) and
/// its document, as the resource's own route takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredResource {
    pub kind: String,
    #[serde(default)]
    pub name: String,
    pub body: Value,
}

/// A problem that refuses the apply: which resource (`apis/orders`;
/// none when it is no resource's), where in its document, and why.
#[derive(Debug, Serialize)]
pub struct Problem {
    pub resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    pub message: String,
}

/// What an apply changes (or, dry, would change).
#[derive(Debug, Default, Serialize)]
pub struct Diff {
    pub created: Vec<String>,
    /// Each with the top-level fields that differ.
    pub changed: Vec<Changed>,
    pub deleted: Vec<String>,
    pub unchanged: Vec<String>,
    /// In the store, not in the desired set, kept (no `prune`).
    pub kept: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Changed {
    pub resource: String,
    pub fields: Vec<String>,
}

impl Diff {
    fn is_empty(&self) -> bool {
        self.created.is_empty() && self.changed.is_empty() && self.deleted.is_empty()
    }
}

/// `segment/name`, or the segment of a singleton: how the answer and the
/// folder name a resource.
pub fn resource_id(kind: Kind, name: &str) -> String {
    if kind.singleton() {
        kind.segment().to_string()
    } else {
        format!("{}/{name}", kind.segment())
    }
}

/// `GET /v1/catalog`: every resource as its route shows it (secret values
/// and key hashes stay inside), kinds in a fixed order and names sorted.
/// Read in a write transaction that writes nothing: on PostgreSQL the
/// statements of a plain read each see the latest commit, and an export
/// must be one state (no product listing an API deleted meanwhile).
pub fn export(state: &State) -> Result<Value, ApiError> {
    state.store.write(|c| {
        let revision = store::revision(c)?;
        let mut out = Vec::new();
        for kind in Kind::ALL {
            for doc in resources::list(c, kind)? {
                let name = if kind.singleton() {
                    String::new()
                } else {
                    doc[kind.key()].as_str().unwrap_or_default().to_string()
                };
                out.push(
                    json!({"kind": kind.segment(), "name": name, "body": model::shown(kind, doc)}),
                );
            }
        }
        Ok::<_, ApiError>(json!({"revision": revision, "resources": out}))
    })
}

/// Why the transaction stops without committing.
enum Stop {
    Refused(Vec<Problem>),
    /// Nothing to write, or a dry run (validated, then rolled back).
    Report(Diff),
    Failed(ApiError),
}

impl From<DbError> for Stop {
    fn from(e: DbError) -> Stop {
        Stop::Failed(e.into())
    }
}

/// `POST /v1/catalog/apply`.
pub fn apply(state: &State, body: &[u8], dry_run: bool, prune: bool) -> Result<Value, Refusal> {
    let desired: Desired = model::parse("catalog", body).map_err(Refusal::Error)?;
    apply_resources(state, desired.resources, dry_run, prune)
}

/// Makes the store match `resources` in one transaction (the APIOps
/// import's way in as well as `apply`'s).
pub fn apply_resources(
    state: &State,
    resources: Vec<DesiredResource>,
    dry_run: bool,
    prune: bool,
) -> Result<Value, Refusal> {
    let desired = Desired { resources };
    let mut problems = Vec::new();
    let mut docs: BTreeMap<(usize, String), (Kind, String, Value)> = BTreeMap::new();
    for resource in desired.resources {
        let Some((order, kind)) = Kind::ALL
            .iter()
            .enumerate()
            .find(|(_, k)| k.segment() == resource.kind)
        else {
            problems.push(Problem {
                resource: None,
                pointer: None,
                message: format!(
                    "unknown kind \"{}\"; kinds are apis, products, subscriptions, named-values, fragments, backends, policies, dos-profiles, redis",
                    resource.kind
                ),
            });
            continue;
        };
        let kind = *kind;
        let name = if kind.singleton() {
            GLOBAL.to_string()
        } else {
            resource.name
        };
        let id = resource_id(kind, &name);
        if docs.contains_key(&(order, name.clone())) {
            problems.push(problem(&id, None, format!("{id} is given twice; keep one")));
            continue;
        }
        match desired_doc(kind, &name, resource.body) {
            Ok(doc) => {
                docs.insert((order, name.clone()), (kind, name, doc));
            }
            Err(e) => problems.push(problem(&id, e.pointer.clone(), e.message)),
        }
    }
    let docs: Vec<(Kind, String, Value)> = docs.into_values().collect();
    // Resources refused for their shape are left as they are, and the
    // rest is still validated (rolled back): the answer lists every
    // problem, not the first file's.
    let refused = refused_names(&problems);
    let outcome = state.store.write(|tx| {
        let diff = plan(tx, &docs, &refused, prune)?;
        if diff.is_empty() {
            return Err(match problems.is_empty() {
                true => Stop::Report(diff),
                false => Stop::Refused(std::mem::take(&mut problems)),
            });
        }
        write(tx, &docs, &diff)?;
        let revision = store::bump_revision(tx)?;
        if let Err(e) = bundle::refresh(tx, revision) {
            // The whole check stops at the first API it refuses: each API
            // on its own adds the others' problems.
            let mut found = attribute(&e);
            for text in bundle::api_problems(tx).map_err(Stop::Failed)? {
                for p in attribute(&ApiError::invalid(text)) {
                    if !found.iter().any(|f| f.message == p.message) {
                        found.push(p);
                    }
                }
            }
            problems.extend(found.into_iter().filter(|p| !follows_from(p, &refused)));
        }
        if !problems.is_empty() {
            return Err(Stop::Refused(std::mem::take(&mut problems)));
        }
        if dry_run {
            return Err(Stop::Report(diff));
        }
        Ok((diff, revision))
    });
    match outcome {
        Ok((diff, revision)) => {
            store::advance(&state.revision, revision);
            Ok(answer(&diff, dry_run, Some(revision)))
        }
        Err(Stop::Report(diff)) => Ok(answer(&diff, dry_run, None)),
        Err(Stop::Refused(problems)) => Err(Refusal::Problems(problems)),
        Err(Stop::Failed(e)) => Err(Refusal::Error(e)),
    }
}

/// An apply not done: the problems of the desired set (422), or an error.
pub enum Refusal {
    Problems(Vec<Problem>),
    Error(ApiError),
}

impl Refusal {
    pub fn into_answer(self) -> Result<(StatusCode, Option<Value>), ApiError> {
        match self {
            Refusal::Error(e) => Err(e),
            Refusal::Problems(problems) => {
                let n = problems.len();
                Ok((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some(json!({
                        "statusCode": 422,
                        "message": format!("the catalog was refused: {n} problem(s); nothing was changed"),
                        "problems": problems,
                    })),
                ))
            }
        }
    }
}

fn answer(diff: &Diff, dry_run: bool, revision: Option<u64>) -> Value {
    let mut out = serde_json::to_value(diff).expect("diffs serialise");
    out["dry_run"] = json!(dry_run);
    out["applied"] = json!(revision.is_some());
    if let Some(r) = revision {
        out["revision"] = json!(r);
    }
    out
}

fn problem(resource: &str, pointer: Option<String>, message: String) -> Problem {
    Problem {
        resource: Some(resource.to_string()),
        pointer,
        message,
    }
}

/// The document to store for a desired resource, checked for shape as its
/// own route checks it. Subscriptions keep only what an admin writes:
/// their keys are the control plane's (minted on creation).
fn desired_doc(kind: Kind, name: &str, body: Value) -> Result<Value, ApiError> {
    if kind != Kind::Subscription {
        return model::normalise(kind, name, body);
    }
    model::check_name(kind.noun(), name).map_err(|e| e.at("/id"))?;
    let mut body = body;
    if let Value::Object(map) = &mut body {
        map.entry("id").or_insert_with(|| json!(name));
    }
    let write: SubscriptionWrite = model::shape(&format!("subscription \"{name}\""), body)?;
    if write.id != name {
        return Err(ApiError::bad_request(format!(
            "subscription \"{name}\": the \"id\" (\"{}\") differs from the file's name; make them equal or omit it",
            write.id
        ))
        .at("/id"));
    }
    Ok(subscription_doc(
        &write.id,
        &write.scope,
        write.state.as_deref(),
    ))
}

fn subscription_doc(id: &str, scope: &str, state: Option<&str>) -> Value {
    let mut doc = json!({"id": id, "scope": scope});
    if let Some(s) = state {
        doc["state"] = json!(s);
    }
    doc
}

/// What a stored document is compared as: subscriptions without their
/// key hashes.
fn comparable(kind: Kind, doc: Value) -> Value {
    if kind == Kind::Subscription {
        return subscription_doc(
            doc["id"].as_str().unwrap_or_default(),
            doc["scope"].as_str().unwrap_or_default(),
            doc["state"].as_str(),
        );
    }
    doc
}

/// The top-level fields of two documents that differ.
fn fields(old: &Value, new: &Value) -> Vec<String> {
    let keys: BTreeSet<&String> = old
        .as_object()
        .into_iter()
        .chain(new.as_object())
        .flat_map(|m| m.keys())
        .collect();
    keys.into_iter()
        .filter(|k| old.get(k.as_str()) != new.get(k.as_str()))
        .cloned()
        .collect()
}

/// The resources refused for their shape: `(segment, name)`.
fn refused_names(problems: &[Problem]) -> BTreeSet<(String, String)> {
    problems
        .iter()
        .filter_map(|p| p.resource.as_deref())
        .map(|id| match id.split_once('/') {
            Some((segment, name)) => (segment.to_string(), name.to_string()),
            None => (id.to_string(), GLOBAL.to_string()),
        })
        .collect()
}

/// Whether a validation problem only follows from a refused resource
/// being left out (it quotes the refused one's name).
pub fn follows_from(problem: &Problem, refused: &BTreeSet<(String, String)>) -> bool {
    let quoted: Vec<&str> = problem.message.split('"').skip(1).step_by(2).collect();
    refused
        .iter()
        .any(|(_, name)| quoted.contains(&name.as_str()))
}

fn plan(
    tx: &Conn,
    docs: &[(Kind, String, Value)],
    refused: &BTreeSet<(String, String)>,
    prune: bool,
) -> Result<Diff, Stop> {
    let mut diff = Diff::default();
    for (kind, name, doc) in docs {
        let id = resource_id(*kind, name);
        match resources::get(tx, *kind, name)? {
            None => diff.created.push(id),
            Some(old) => {
                let old = comparable(*kind, old);
                if old == *doc {
                    diff.unchanged.push(id);
                } else {
                    diff.changed.push(Changed {
                        resource: id,
                        fields: fields(&old, doc),
                    });
                }
            }
        }
    }
    for kind in Kind::ALL {
        for stored in resources::list(tx, kind)? {
            let name = if kind.singleton() {
                GLOBAL.to_string()
            } else {
                stored[kind.key()].as_str().unwrap_or_default().to_string()
            };
            let given = docs.iter().any(|(k, n, _)| *k == kind && *n == name)
                || refused.contains(&(kind.segment().to_string(), name.clone()));
            if !given {
                let id = resource_id(kind, &name);
                if prune {
                    diff.deleted.push(id);
                } else {
                    diff.kept.push(id);
                }
            }
        }
    }
    Ok(diff)
}

fn write(tx: &Conn, docs: &[(Kind, String, Value)], diff: &Diff) -> Result<(), Stop> {
    let created: BTreeSet<&str> = diff.created.iter().map(String::as_str).collect();
    let changed: BTreeSet<&str> = diff.changed.iter().map(|c| c.resource.as_str()).collect();
    for (kind, name, doc) in docs {
        let id = resource_id(*kind, name);
        let mut doc = doc.clone();
        if *kind == Kind::Subscription {
            if created.contains(id.as_str()) {
                // Keys are minted here and never shown: an admin gets them
                // with POST /v1/subscriptions/{id}/regenerate.
                doc["primary_key_sha256"] = json!(new_key().1);
                doc["secondary_key_sha256"] = json!(new_key().1);
            } else if changed.contains(id.as_str()) {
                let old = resources::get(tx, *kind, name)?.unwrap_or_default();
                doc["primary_key_sha256"] = old["primary_key_sha256"].clone();
                doc["secondary_key_sha256"] = old["secondary_key_sha256"].clone();
            }
        }
        if created.contains(id.as_str()) || changed.contains(id.as_str()) {
            resources::put(tx, *kind, name, &doc)?;
        }
    }
    for id in &diff.deleted {
        let (segment, name) = id.split_once('/').unwrap_or((id.as_str(), GLOBAL));
        let kind = Kind::from_segment(segment).expect("planned from the store's kinds");
        resources::delete(tx, kind, name)?;
    }
    Ok(())
}

/// The problems of a refused bundle, each with the resource it names.
/// The gateway's validation joins every catalog problem into one line,
/// each starting with its origin; the resource is the first `kind "name"`.
fn attribute(e: &ApiError) -> Vec<Problem> {
    if e.status != StatusCode::UNPROCESSABLE_ENTITY {
        return vec![Problem {
            resource: None,
            pointer: None,
            message: e.message.clone(),
        }];
    }
    const ORIGIN: &str = "control plane configuration: ";
    let text = e.message.as_str();
    let mut out = Vec::new();
    for part in text.split(&format!("; {ORIGIN}")) {
        let mut message = part;
        while let Some(rest) = message.strip_prefix(ORIGIN) {
            message = rest;
        }
        let message = message.strip_prefix("catalog: ").unwrap_or(message);
        out.push(Problem {
            resource: owner(message),
            pointer: None,
            message: message.to_string(),
        });
    }
    out
}

/// The resource a validation message starts with: `api "orders": ...`,
/// `global policies: ...`.
fn owner(message: &str) -> Option<String> {
    if message.starts_with("global policies") {
        return Some(Kind::Policies.segment().to_string());
    }
    if message.starts_with("redis") {
        return Some(Kind::Redis.segment().to_string());
    }
    let (noun, rest) = message.split_once(" \"")?;
    let name = rest.split('"').next()?;
    let kind = Kind::ALL.into_iter().find(|k| k.noun() == noun)?;
    Some(resource_id(kind, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_of_a_refused_bundle_name_their_resource() {
        let e = ApiError::invalid(
            "control plane configuration: catalog: product \"gold\": api \"nope\" is not in the catalog's apis; add it there first; control plane configuration: catalog: api \"orders\": inbound: unknown policy \"rate-limt\"; see the README",
        );
        let problems = attribute(&e);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].resource.as_deref(), Some("products/gold"));
        assert!(
            problems[0]
                .message
                .starts_with("product \"gold\": api \"nope\"")
        );
        assert_eq!(problems[1].resource.as_deref(), Some("apis/orders"));
        assert!(problems[1].message.ends_with("see the README"));
        assert_eq!(
            owner("dos profile \"edge\": bad"),
            Some("dos-profiles/edge".into())
        );
        assert_eq!(owner("gateway \"g\": api \"x\" does not exist"), None);
    }

    #[test]
    fn changed_fields_are_named() {
        let old = json!({"name": "a", "path": "/a", "backend": "x"});
        let new = json!({"name": "a", "path": "/b", "backend": "x", "host": "h"});
        assert_eq!(fields(&old, &new), vec!["host", "path"]);
    }
}
