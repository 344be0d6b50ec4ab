//! `edgegw-cp import apim DIR [--dry-run] [--partial]`: sends the folder's
//! files to `POST /v1/import/apim` and prints what was imported, skipped
//! (why) and refused (file:line). Exit codes: 0 imported (or a dry run
//! that would import), 1 refused (nothing created).

use std::{collections::BTreeMap, path::Path, process::ExitCode};

use hyper::Method;
use serde_json::{Value, json};

use crate::declarative::client::{self, Remote};

/// Files larger than this are not policy or information files.
const MAX_FILE: u64 = 4 << 20;

pub fn import_apim(
    remote: &Remote,
    dir: &Path,
    dry_run: bool,
    partial: bool,
) -> anyhow::Result<ExitCode> {
    let mut files = BTreeMap::new();
    let mut unreadable = Vec::new();
    collect(dir, dir, &mut files, &mut unreadable).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the folder {}: {e}; give the folder the APIOps extractor wrote",
            dir.display()
        )
    })?;
    for (file, why) in &unreadable {
        eprintln!("{file}: {why}");
    }
    if !unreadable.is_empty() && !partial {
        eprintln!(
            "edgegw-cp: import refused: {} unreadable file(s); nothing was created",
            unreadable.len()
        );
        return Ok(ExitCode::from(1));
    }
    let client = remote.client()?;
    let query: Vec<&str> = [(dry_run, "dry_run=true"), (partial, "partial=true")]
        .into_iter()
        .filter_map(|(on, q)| on.then_some(q))
        .collect();
    let mut path = "/v1/import/apim".to_string();
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let (status, body) = client.call(Method::POST, &path, Some(&json!({"files": files})))?;
    if status != 200 && status != 422 {
        anyhow::bail!("import failed: {}", client::message(status, &body));
    }
    let list = |key: &str| body[key].as_array().cloned().unwrap_or_default();
    let imported = list("imported");
    if !imported.is_empty() {
        let verb = if dry_run { "would import" } else { "imported" };
        let names: Vec<&str> = imported.iter().filter_map(Value::as_str).collect();
        println!("{verb}: {}: {}", names.len(), names.join(", "));
    }
    for s in list("skipped") {
        println!(
            "skipped: {}: {}",
            s["file"].as_str().unwrap_or_default(),
            s["why"].as_str().unwrap_or_default()
        );
    }
    let refused = list("refused");
    for r in &refused {
        let at = match r["line"].as_u64() {
            Some(l) => format!("{}:{l}", r["file"].as_str().unwrap_or_default()),
            None => r["file"].as_str().unwrap_or_default().to_string(),
        };
        eprintln!(
            "refused: {at}: {}",
            r["message"].as_str().unwrap_or_default()
        );
    }
    if status == 422 {
        eprintln!(
            "edgegw-cp: import refused: {} problem(s) in {}; nothing was created",
            refused.len(),
            dir.display()
        );
        return Ok(ExitCode::from(1));
    }
    match body["revision"].as_u64() {
        Some(r) => println!("imported at revision {r}"),
        None if dry_run => println!("dry run: nothing was created"),
        None => println!("no change: the control plane already holds the folder's catalog"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Every file under `dir` (hidden ones aside) with its text, by relative
/// path with `/`.
fn collect(
    root: &Path,
    dir: &Path,
    files: &mut BTreeMap<String, String>,
    unreadable: &mut Vec<(String, String)>,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let meta = entry.metadata()?;
        if meta.is_dir() {
            collect(root, &path, files, unreadable)?;
        } else if meta.len() > MAX_FILE {
            unreadable.push((rel, format!("larger than {} MiB", MAX_FILE >> 20)));
        } else {
            match std::fs::read_to_string(&path) {
                // A byte-order mark (Windows editors) is not content.
                Ok(text) => {
                    files.insert(rel, text.trim_start_matches('\u{feff}').to_string());
                }
                Err(e) => unreadable.push((rel, format!("not UTF-8 text: {e}"))),
            }
        }
    }
    Ok(())
}
