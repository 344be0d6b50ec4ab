//! Reads a declarative folder: every file of the layout parsed with the
//! lines of its values, names taken from file names, secret references
//! resolved. Every problem is collected with its file and line; none stops
//! the others.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use serde_json::Value;

use super::{
    path_of,
    spans::{self, Located},
};
use crate::store::Kind;

/// One resource file.
#[derive(Debug)]
pub struct FileDoc {
    pub kind: Kind,
    /// From the file name (empty for `policies` and `redis`).
    pub name: String,
    /// Relative to the folder, e.g. `apis/orders.yaml`.
    pub path: PathBuf,
    pub doc: Located,
}

/// A problem with its place: `apis/orders.yaml:12: ...`.
#[derive(Debug)]
pub struct Problem {
    pub file: String,
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Entries of `dir`, sorted (a stable order of files and of problems).
fn entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    out.sort();
    Ok(out)
}

/// Reads `dir`: the resources (in the order of `Kind::ALL`, then by name)
/// and every problem found.
pub fn read(dir: &Path) -> anyhow::Result<(Vec<FileDoc>, Vec<Problem>)> {
    let top = entries(dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the folder {}: {e}; give the folder `edgegw-cp export` wrote",
            dir.display()
        )
    })?;
    let mut docs = Vec::new();
    let mut problems = Vec::new();
    let layout = "apis/, products/, subscriptions/, named-values/, fragments/, backends/, dos-profiles/, policies.yaml, redis.yaml";
    for path in top {
        if hidden(&path) {
            continue;
        }
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let stem = path
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            match Kind::from_segment(&file_name).filter(|k| !k.singleton()) {
                Some(kind) => read_kind(dir, kind, &mut docs, &mut problems)?,
                None if contains_yaml(&path) => problems.push(Problem {
                    file: format!("{file_name}/"),
                    line: None,
                    message: format!(
                        "not a folder of the layout ({layout}); rename it or move it out"
                    ),
                }),
                None => {}
            }
        } else if is_yaml(&path) {
            match Kind::from_segment(stem).filter(|k| k.singleton()) {
                Some(kind) => {
                    if let Some(doc) = parse_file(dir, &path_of(kind, ""), &path, &mut problems) {
                        docs.push(FileDoc {
                            kind,
                            name: String::new(),
                            path: PathBuf::from(&file_name),
                            doc,
                        });
                    }
                }
                None => problems.push(Problem {
                    file: file_name,
                    line: None,
                    message: format!(
                        "not a file of the layout ({layout}); rename it or move it out"
                    ),
                }),
            }
        }
    }
    for file in &mut docs {
        resolve(dir, file, &mut problems);
    }
    problems.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    docs.sort_by_key(|d| (Kind::ALL.iter().position(|k| *k == d.kind), d.name.clone()));
    Ok((docs, problems))
}

fn contains_yaml(dir: &Path) -> bool {
    entries(dir).is_ok_and(|e| e.iter().any(|p| is_yaml(p)))
}

fn read_kind(
    dir: &Path,
    kind: Kind,
    docs: &mut Vec<FileDoc>,
    problems: &mut Vec<Problem>,
) -> anyhow::Result<()> {
    let folder = dir.join(kind.segment());
    for path in entries(&folder)? {
        if hidden(&path) {
            continue;
        }
        let rel = PathBuf::from(kind.segment()).join(path.file_name().unwrap_or_default());
        if path.is_dir() || !is_yaml(&path) {
            problems.push(Problem {
                file: rel.display().to_string(),
                line: None,
                message: format!(
                    "{}/ holds one NAME.yaml file per {}; move this out",
                    kind.segment(),
                    kind.noun()
                ),
            });
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if docs.iter().any(|d| d.kind == kind && d.name == name) {
            problems.push(Problem {
                file: rel.display().to_string(),
                line: None,
                message: format!(
                    "{} \"{name}\" has two files (.yaml and .yml); keep one",
                    kind.noun()
                ),
            });
            continue;
        }
        let Some(mut doc) = parse_file(dir, &rel, &path, problems) else {
            continue;
        };
        // The file name is the resource's name; a name inside must agree.
        let key = kind.key();
        match doc.value.get(key) {
            None => {
                doc.value[key] = Value::String(name.clone());
            }
            Some(Value::String(inner)) if *inner == name => {}
            Some(other) => problems.push(Problem {
                file: rel.display().to_string(),
                line: Some(doc.line_of(&format!("/{key}"))),
                message: format!(
                    "{key} {other} differs from the file name \"{name}\"; make them equal or leave {key} out"
                ),
            }),
        }
        docs.push(FileDoc {
            kind,
            name,
            path: rel,
            doc,
        });
    }
    Ok(())
}

/// Parses one file; `None` (with a problem) when it is not a YAML mapping.
fn parse_file(dir: &Path, rel: &Path, path: &Path, problems: &mut Vec<Problem>) -> Option<Located> {
    let file = rel.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            problems.push(Problem {
                file,
                line: None,
                message: format!("cannot read it: {e} (in {})", dir.display()),
            });
            return None;
        }
    };
    match spans::parse(&text) {
        Ok(doc) if doc.value.is_object() => Some(doc),
        Ok(_) => {
            problems.push(Problem {
                file,
                line: Some(1),
                message: "the file must hold one mapping (field: value lines)".into(),
            });
            None
        }
        Err(e) => {
            problems.push(Problem {
                file,
                line: (e.line > 0).then_some(e.line),
                message: format!("invalid YAML: {}", e.message),
            });
            None
        }
    }
}

/// A named value's `value_from: {env: NAME}` or `{file: PATH}` (relative
/// to the folder) becomes its `value`; a secret's value is never written
/// in the folder.
fn resolve(dir: &Path, file: &mut FileDoc, problems: &mut Vec<Problem>) {
    if file.kind != Kind::NamedValue {
        return;
    }
    let path = file.path.display().to_string();
    let doc = &mut file.doc;
    let secret = doc.value.get("secret") == Some(&Value::Bool(true));
    let mut problem = |pointer: &str, message: String, doc: &Located| {
        problems.push(Problem {
            file: path.clone(),
            line: Some(doc.line_of(pointer)),
            message,
        })
    };
    let Some(from) = doc.value.get("value_from").cloned() else {
        if secret && doc.value.get("value").is_some() {
            problem(
                "/value",
                "a secret's value is never written in the folder; use value_from: {env: VARIABLE} or {file: PATH}".into(),
                doc,
            );
        }
        return;
    };
    if doc.value.get("value").is_some() {
        problem(
            "/value_from",
            "give either value or value_from, not both".into(),
            doc,
        );
        return;
    }
    let fix = "write value_from: {env: VARIABLE} or value_from: {file: PATH}";
    let Some(map) = from.as_object().filter(|m| m.len() == 1) else {
        problem(
            "/value_from",
            format!("value_from names one source; {fix}"),
            doc,
        );
        return;
    };
    let (source, target) = map.iter().next().expect("one entry");
    let Some(target) = target.as_str() else {
        problem(
            &format!("/value_from/{source}"),
            format!("value_from.{source} must be a string; {fix}"),
            doc,
        );
        return;
    };
    let value = match source.as_str() {
        "env" => std::env::var(target).map_err(|_| {
            format!(
                "environment variable {target} is not set; set it to the value (e.g. from the CI system's secrets)"
            )
        }),
        "file" => std::fs::read_to_string(dir.join(target))
            .map(|t| t.strip_suffix('\n').unwrap_or(&t).to_string())
            .map_err(|e| {
                format!(
                    "cannot read {} for value_from.file: {e}; check the path (relative to the folder)",
                    dir.join(target).display()
                )
            }),
        other => Err(format!("unknown source \"{other}\"; {fix}")),
    };
    match value {
        Ok(value) => {
            let line = doc.line_of("/value_from");
            let map = doc.value.as_object_mut().expect("checked to be a mapping");
            map.remove("value_from");
            map.insert("value".into(), Value::String(value));
            // Problems the control plane finds with the value point here.
            doc.lines.insert("/value".into(), line);
        }
        Err(message) => problem(&format!("/value_from/{source}"), message, doc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "edgegw-folder-{}-{}",
            std::process::id(),
            files.len()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    #[test]
    fn every_problem_has_its_file_and_line() {
        let dir = folder(&[
            (
                "apis/orders.yaml",
                "name: orders\npath: /orders\nbackend: [1\n",
            ),
            ("apis/pets.yaml", "name: cats\npath: /pets\n"),
            ("named-values/token.yaml", "secret: true\nvalue: s3cr3t\n"),
            (
                "named-values/from-env.yaml",
                "secret: true\nvalue_from:\n  env: EDGEGW_TEST_SURELY_UNSET\n",
            ),
            (
                "named-values/from-file.yaml",
                "secret: true\nvalue_from: {file: secret.txt}\n",
            ),
            ("secret.txt", "hunter2\n"),
            ("product/x.yaml", "apis: []\n"),
            ("README.md", "not read\n"),
        ]);
        let (docs, problems) = read(&dir).unwrap();
        let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 5, "{lines:#?}");
        assert!(lines[0].starts_with("apis/orders.yaml:"), "{lines:#?}");
        assert!(lines[0].contains(": invalid YAML: "), "{lines:#?}");
        assert!(
            lines[1].starts_with("apis/pets.yaml:1: name \"cats\" differs"),
            "{lines:#?}"
        );
        assert!(
            lines[2].starts_with(
                "named-values/from-env.yaml:3: environment variable EDGEGW_TEST_SURELY_UNSET"
            ),
            "{lines:#?}"
        );
        assert!(
            lines[3].starts_with("named-values/token.yaml:2: a secret's value"),
            "{lines:#?}"
        );
        assert!(lines[4].starts_with("product/: not a folder"), "{lines:#?}");
        let file = docs.iter().find(|d| d.name == "from-file").unwrap();
        assert_eq!(file.doc.value["value"], "hunter2");
        assert_eq!(file.doc.value["name"], "from-file");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
