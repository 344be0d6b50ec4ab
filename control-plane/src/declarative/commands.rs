//! `edgegw-cp export DIR` and `edgegw-cp apply DIR [--dry-run] [--prune]`.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;
use hyper::Method;
use serde_json::{Value, json};

use super::{
    client::{self, Remote},
    folder::{self, FileDoc, Problem},
    path_of, render,
};
use crate::store::Kind;

/// Writes every resource of the control plane into `dir`, one file each,
/// and removes the files of the layout that no longer match a resource
/// (other files in `dir` are left alone).
pub fn export(remote: &Remote, dir: &Path) -> anyhow::Result<ExitCode> {
    let client = remote.client()?;
    let (status, body) = client.call(Method::GET, "/v1/catalog", None)?;
    anyhow::ensure!(
        status == 200,
        "export refused: {}",
        client::message(status, &body)
    );
    let mut files: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for resource in body["resources"].as_array().into_iter().flatten() {
        let segment = resource["kind"].as_str().unwrap_or_default();
        let kind = Kind::from_segment(segment)
            .with_context(|| format!("the control plane sent an unknown kind \"{segment}\"; use the edgegw-cp of the control plane's version"))?;
        let name = resource["name"].as_str().unwrap_or_default();
        files.insert(
            path_of(kind, name),
            render::file_text(kind, resource["body"].clone()),
        );
        *counts.entry(kind.segment()).or_default() += 1;
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create {}; check the path", dir.display()))?;
    let mut removed = Vec::new();
    for kind in Kind::ALL {
        let stale: Vec<PathBuf> = if kind.singleton() {
            vec![path_of(kind, "")]
        } else {
            match std::fs::read_dir(dir.join(kind.segment())) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok())
                    .map(|e| PathBuf::from(kind.segment()).join(e.file_name()))
                    .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                    .collect(),
                Err(_) => Vec::new(),
            }
        };
        for path in stale {
            if !files.contains_key(&path) && dir.join(&path).exists() {
                std::fs::remove_file(dir.join(&path))
                    .with_context(|| format!("cannot remove {}", dir.join(&path).display()))?;
                removed.push(path.display().to_string());
            }
        }
    }
    for (path, text) in &files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        // Unchanged files are not rewritten (their times stay).
        if std::fs::read_to_string(&full).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&full, text)
                .with_context(|| format!("cannot write {}", full.display()))?;
        }
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "exported {} resources to {} (revision {}): {}",
        files.len(),
        dir.display(),
        body["revision"],
        if summary.is_empty() {
            "none".to_string()
        } else {
            summary.join(", ")
        }
    );
    if !removed.is_empty() {
        println!(
            "removed {} stale file(s): {}",
            removed.len(),
            removed.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Makes the control plane match `dir`. Exit codes: 0 applied or nothing
/// to do, 1 refused (every problem listed, nothing changed), 2 a diff is
/// present under `--dry-run`.
pub fn apply(remote: &Remote, dir: &Path, dry_run: bool, prune: bool) -> anyhow::Result<ExitCode> {
    let (docs, mut problems) = folder::read(dir)?;
    let client = remote.client()?;
    // Files with problems of their own are left out, and the rest is still
    // checked by the control plane (as a dry run, never pruning), so every
    // problem of the folder is listed at once.
    let broken: BTreeSet<&str> = problems.iter().map(|p| p.file.as_str()).collect();
    let excluded: Vec<String> = docs
        .iter()
        .filter(|d| broken.contains(d.path.display().to_string().as_str()))
        .map(|d| d.name.clone())
        .chain(broken.iter().filter_map(|f| {
            Path::new(f)
                .file_stem()
                .and_then(|s| s.to_str())
                .map(String::from)
        }))
        .collect();
    let sent: Vec<&FileDoc> = docs
        .iter()
        .filter(|d| !broken.contains(d.path.display().to_string().as_str()))
        .collect();
    let local = !problems.is_empty();
    let resources: Vec<Value> = sent
        .iter()
        .map(|d| json!({"kind": d.kind.segment(), "name": d.name, "body": d.doc.value}))
        .collect();
    let query: Vec<&str> = [
        (dry_run || local, "dry_run=true"),
        (prune && !local, "prune=true"),
    ]
    .into_iter()
    .filter_map(|(on, q)| on.then_some(q))
    .collect();
    let mut path = "/v1/catalog/apply".to_string();
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let (status, body) =
        client.call(Method::POST, &path, Some(&json!({"resources": resources})))?;
    match status {
        200 if !local => return Ok(report(&body, dry_run, prune)),
        200 => {}
        422 if body["problems"].is_array() => {
            for p in body["problems"].as_array().into_iter().flatten() {
                let quoted = quoted(p["message"].as_str().unwrap_or_default());
                // A consequence of a file left out, reported already.
                if excluded.iter().any(|name| quoted.contains(&name.as_str())) {
                    continue;
                }
                problems.push(place(&docs, p));
            }
        }
        _ => anyhow::bail!("apply failed: {}", client::message(status, &body)),
    }
    problems.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    for p in &problems {
        eprintln!("{p}");
    }
    eprintln!(
        "edgegw-cp: apply refused: {} problem(s) in {}; nothing was changed",
        problems.len(),
        dir.display()
    );
    Ok(ExitCode::from(1))
}

/// A problem the control plane found, placed in its file: at its JSON
/// pointer, else at the deepest key or value its message quotes.
fn place(docs: &[FileDoc], problem: &Value) -> Problem {
    let message = problem["message"].as_str().unwrap_or_default().to_string();
    let resource = problem["resource"].as_str().unwrap_or_default();
    let file = docs.iter().find(|d| {
        let id = if d.kind.singleton() {
            d.kind.segment().to_string()
        } else {
            format!("{}/{}", d.kind.segment(), d.name)
        };
        id == resource
    });
    let Some(file) = file else {
        let origin = if resource.is_empty() {
            "(control plane)".to_string()
        } else {
            format!("{resource} (not in the folder)")
        };
        return Problem {
            file: origin,
            line: None,
            message,
        };
    };
    let line = match problem["pointer"].as_str() {
        Some(pointer) => file.doc.line_of(pointer),
        None => quoted(&message)
            .iter()
            .rev()
            .find_map(|q| {
                // The resource's own name is where every message starts.
                (*q != file.name)
                    .then(|| file.doc.line_of_text(q))
                    .flatten()
            })
            .or_else(|| section_line(file, &message))
            .unwrap_or(1),
    };
    Problem {
        file: file.path.display().to_string(),
        line: Some(line),
        message,
    }
}

/// The texts a message quotes: `unknown policy "rate-limt"`.
fn quoted(message: &str) -> Vec<&str> {
    message.split('"').skip(1).step_by(2).collect()
}

/// The line of a policy section a message names (`api "a": inbound: ...`).
fn section_line(file: &FileDoc, message: &str) -> Option<u64> {
    ["inbound", "backend", "outbound", "on-error"]
        .iter()
        .find(|s| message.contains(&format!(": {s}")))
        .and_then(|s| file.doc.line_of_text(s))
}

/// Prints the diff; the exit code.
fn report(body: &Value, dry_run: bool, prune: bool) -> ExitCode {
    let list = |field: &str| -> Vec<String> {
        body[field]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => {
                    let fields: Vec<&str> = other["fields"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    format!(
                        "{} ({})",
                        other["resource"].as_str().unwrap_or_default(),
                        fields.join(", ")
                    )
                }
            })
            .collect()
    };
    let created = list("created");
    let changed = list("changed");
    let deleted = list("deleted");
    let unchanged = list("unchanged");
    let kept = list("kept");
    let line = |what: &str, items: &[String]| {
        if items.is_empty() {
            println!("{what}: 0");
        } else {
            println!("{what}: {}: {}", items.len(), items.join(", "));
        }
    };
    line("created", &created);
    line("changed", &changed);
    if prune {
        line("deleted", &deleted);
    } else if !kept.is_empty() {
        println!(
            "not in the folder, kept: {}: {} (--prune deletes them)",
            kept.len(),
            kept.join(", ")
        );
    }
    line("unchanged", &unchanged);
    let new_subscriptions: Vec<&String> = created
        .iter()
        .filter(|c| c.starts_with("subscriptions/"))
        .collect();
    let diff = !(created.is_empty() && changed.is_empty() && deleted.is_empty());
    if !diff {
        println!("no change: the control plane matches the folder");
        return ExitCode::SUCCESS;
    }
    if dry_run {
        println!("dry run: nothing was changed (the changes above validate)");
        return ExitCode::from(2);
    }
    println!("applied at revision {}", body["revision"]);
    for s in new_subscriptions {
        let id = s.trim_start_matches("subscriptions/");
        println!(
            "subscription {id}: keys were generated; get one with POST /v1/subscriptions/{id}/regenerate?key=primary"
        );
    }
    ExitCode::SUCCESS
}
