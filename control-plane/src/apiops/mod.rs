//! `POST /v1/import/apim[?dry_run=true][&partial=true]` and `edgegw-cp
//! import apim DIR`: an APIOps extractor folder (`layout`) becomes
//! catalog resources, created in ONE transaction through the same path as
//! a declarative apply (`crate::apply`), so the whole catalog is validated
//! as any write is. The answer lists what was imported, what was skipped
//! and why, and what was refused (file and line). Any refusal refuses the
//! whole import unless `partial`: then the refused resources (and what
//! depends on them) are left out and the rest is imported.

pub mod command;
mod layout;

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::json;

use crate::{
    api::Answer,
    apply::{self, DesiredResource, Problem, Refusal},
    error::ApiError,
    model,
    state::State,
};
use layout::Refused;

/// The request: the folder's files by relative path (`/` separated).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Folder {
    pub files: BTreeMap<String, String>,
}

/// How many times a partial import leaves out what the catalog's
/// validation refused and tries again (each round removes at least one).
const PARTIAL_ROUNDS: usize = 16;

pub fn import(
    state: &State,
    body: &[u8],
    dry_run: bool,
    partial: bool,
) -> Result<Answer, ApiError> {
    let folder: Folder = model::parse("APIOps folder", body)?;
    let read = layout::read(&folder.files);
    let mut refused = read.refused.clone();
    let mut left_out: BTreeSet<String> =
        refused.iter().filter_map(|r| r.resource.clone()).collect();
    let mut outcome = None;
    for _ in 0..PARTIAL_ROUNDS {
        let resources: Vec<DesiredResource> = read
            .resources
            .iter()
            .filter(|(r, _)| !left_out.contains(&id_of(r)))
            .map(|(r, _)| DesiredResource {
                kind: r.kind.clone(),
                name: r.name.clone(),
                body: r.body.clone(),
            })
            .collect();
        let ids: Vec<String> = resources.iter().map(id_of).collect();
        // With problems already found (and no `partial`), the rest is still
        // validated, rolled back, so that every problem is listed at once.
        let dry = dry_run || (!partial && !refused.is_empty());
        match apply::apply_resources(state, resources, dry, false) {
            Ok(answer) => {
                outcome = Some((ids, answer));
                break;
            }
            Err(Refusal::Error(e)) => return Err(e),
            Err(Refusal::Problems(problems)) => {
                let before = left_out.len();
                for p in &problems {
                    refused.push(place(&read, p));
                    if let Some(r) = &p.resource {
                        left_out.insert(r.clone());
                    }
                }
                if !partial || left_out.len() == before {
                    break;
                }
            }
        }
    }
    refused.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    refused.dedup_by(|a, b| a.file == b.file && a.line == b.line && a.message == b.message);
    let report = |imported: Vec<String>| {
        json!({
            "imported": imported,
            "skipped": read.skipped,
            "refused": refused,
            "dry_run": dry_run,
            "partial": partial,
        })
    };
    match outcome {
        Some((ids, answer)) if partial || refused.is_empty() => {
            let mut out = report(ids);
            out["applied"] = answer["applied"].clone();
            if let Some(r) = answer.get("revision") {
                out["revision"] = r.clone();
            }
            Ok((hyper::StatusCode::OK, Some(out)))
        }
        _ => {
            let mut out = report(Vec::new());
            out["statusCode"] = json!(422);
            out["applied"] = json!(false);
            out["message"] = json!(format!(
                "the APIOps import was refused: {} problem(s); nothing was created (import with partial=true to take the rest)",
                refused.len()
            ));
            Ok((hyper::StatusCode::UNPROCESSABLE_ENTITY, Some(out)))
        }
    }
}

fn id_of(r: &DesiredResource) -> String {
    if r.name.is_empty() {
        r.kind.clone()
    } else {
        format!("{}/{}", r.kind, r.name)
    }
}

/// A problem the catalog's validation found, placed in the folder: the
/// policy file of the scope (operation, fragment) it names, at the XML
/// line it gives; else the resource's own file.
fn place(read: &layout::Read, p: &Problem) -> Refused {
    let message = p.message.clone();
    let xml_line = message
        .split("policy XML line ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.trim().parse::<u64>().ok());
    let before_line = message.split("policy XML line ").next().unwrap_or_default();
    // The innermost scope named before the position.
    let quoted = |noun: &str| -> Option<String> {
        let at = before_line.rfind(&format!("{noun} \""))?;
        let rest = &before_line[at + noun.len() + 2..];
        Some(rest.split('"').next()?.to_string())
    };
    let resource = p.resource.clone().unwrap_or_default();
    let policy_file = if let Some(f) = quoted("fragment").filter(|_| xml_line.is_some()) {
        read.policy_files.get(&format!("fragments/{f}")).cloned()
    } else if let Some(op) = quoted("operation") {
        read.policy_files
            .get(&format!("{resource} operation {op}"))
            .cloned()
    } else {
        read.policy_files.get(&resource).cloned()
    };
    let own_file = read
        .resources
        .iter()
        .find(|(r, _)| id_of(r) == resource)
        .map(|(_, f)| f.clone());
    let (file, line) = match (policy_file, xml_line) {
        (Some(f), Some(l)) => (f, Some(l)),
        (Some(f), None) if message.contains("<") => (f, None),
        _ => (own_file.unwrap_or_else(|| "(catalog)".into()), None),
    };
    Refused {
        file,
        line,
        message,
        resource: p.resource.clone(),
    }
}
