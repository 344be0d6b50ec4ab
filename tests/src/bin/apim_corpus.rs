//! `cargo xtask corpus DIR [--report FILE]`: how much of a corpus of real APIM policy
//! documents edgegw imports and runs (issue 29's target: 85%).
//!
//! Every `*.xml` under DIR whose root is `<policies>` or `<fragment>` is a
//! document (duplicates by content are counted once). Each is put in an
//! APIOps-shaped folder of its own, as the extractor would have written it
//! around the document: a policy document as an API's `policy.xml` (one
//! `GET /` operation), a fragment under `policyFragments/`, with the
//! fragments it includes from the same source folder, a named value for
//! every `{{name}}` it uses (and for every Terraform `${name}` of a
//! document kept as a template) and a backend for every `backend-id`. The real
//! `edgegw-cp import apim --dry-run` judges each folder: imported, or
//! refused with its first reason.
//!
//! Then every imported policy document is imported for real as its own API
//! and a real gateway managed by the control plane gets one request for
//! each, to an echo backend: "ran" means the gateway answered it with a
//! status that is not a 5xx of its own making.
//!
//! Prints a line per document and the totals; `--report FILE` also writes
//! them as a Markdown table.
#![forbid(unsafe_code)]

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use edgegw_tests::{
    backends::{RawBackend, TestBackend},
    certs::TestCa,
    cp::{ControlPlane, cp_bin},
    managed::{ManagedNode, register},
    process::{TempDir, free_port},
    redis::{PASSWORD, RedisServer},
};
use serde_json::json;
use sha2::{Digest, Sha256};

struct Document {
    /// Path under DIR.
    source: PathBuf,
    text: String,
    fragment: bool,
}

impl Document {
    /// A fragment's name: its APIOps folder's name, else the file's stem.
    /// A corpus may keep a repository's paths flattened into file names
    /// with `__` between folders (`policyFragments__name__policy.xml`).
    fn fragment_name(&self) -> String {
        let stem = self.source.file_stem().unwrap().to_string_lossy();
        let parent = self
            .source
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let parts: Vec<&str> = stem.split("__").collect();
        let name = match parts.as_slice() {
            ["policy"] => parent.as_str(),
            [.., folder, "policy"] => folder,
            [.., last] => last,
            [] => "",
        };
        name.replace(' ', "-")
    }

    /// The top folder under DIR the document came from (its repository).
    fn origin(&self) -> String {
        self.source
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().to_string())
            .unwrap_or_default()
    }
}

/// The root element's name, past the XML declaration and comments.
fn root_element(text: &str) -> Option<&str> {
    let mut rest = text.trim_start_matches('\u{feff}');
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("<?") {
            rest = &r[r.find("?>")? + 2..];
        } else if let Some(r) = rest.strip_prefix("<!--") {
            rest = &r[r.find("-->")? + 3..];
        } else {
            let r = rest.strip_prefix('<')?;
            let end = r.find(|c: char| c.is_whitespace() || c == '>' || c == '/')?;
            return Some(&r[..end]);
        }
    }
}

fn documents(dir: &Path) -> Vec<Document> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "xml") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut seen = BTreeSet::new();
    let mut docs = Vec::new();
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let fragment = match root_element(&text) {
            Some("policies") => false,
            Some("fragment") => true,
            _ => continue,
        };
        if !seen.insert(Sha256::digest(text.as_bytes())) {
            continue;
        }
        let source = path.strip_prefix(dir).unwrap().to_path_buf();
        docs.push(Document {
            source,
            text: rendered(&text),
            fragment,
        });
    }
    docs
}

/// The values of `attribute="..."` in `text`.
fn attribute_values(text: &str, attribute: &str) -> BTreeSet<String> {
    let needle = format!("{attribute}=\"");
    text.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &text[i + needle.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .collect()
}

/// The named values `{{name}}` a document uses, each with a value of the
/// kind the place it is used in needs (its owner's real value would be
/// one): a URL in `base-url`, an address in `ip-filter`, a path in a
/// `rewrite-uri` template, a host after `://` (the TLS echo's after
/// `https://`), a GUID in `tenant-id`, else a word.
fn named_values(text: &str, backend: &Backends) -> BTreeMap<String, String> {
    // Of the places a value is used, the most demanding decides its kind.
    let mut kinds: BTreeMap<String, u8> = BTreeMap::new();
    let mut tls_hosts = BTreeSet::new();
    for (i, _) in text.match_indices("{{") {
        let rest = &text[i + 2..];
        let Some(end) = rest.find("}}") else {
            continue;
        };
        let name = rest[..end].trim();
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid {
            continue;
        }
        let before = text[..i].trim_end_matches(char::is_whitespace);
        let numeric = [
            "calls=\"",
            "count=\"",
            "interval=\"",
            "renewal-period=\"",
            "tokens-per-minute=\"",
            "max-interval=\"",
            "delta=\"",
            "timeout=\"",
            "duration=\"",
        ];
        let kind = if numeric.iter().any(|p| before.ends_with(p)) {
            6 // a number
        } else if before.ends_with("tenant-id=\"") {
            5 // a directory ID
        } else if ["base-url=\"", "base-url='", "<set-url>", "url=\"", "url='"]
            .iter()
            .any(|p| before.ends_with(p))
        {
            4 // a URL
        } else if before.ends_with("://") {
            if before.ends_with("https://") {
                tls_hosts.insert(name.to_string());
            }
            3 // a host
        } else if before.ends_with("<address>")
            || before.ends_with("from=\"")
            || before.ends_with("to=\"")
        {
            2 // an address
        } else if before.ends_with("template=\"") || before.ends_with('\\') {
            1 // a path (also after a pattern's `\`: `^\{{base}}$` is `^\/base$`)
        } else {
            0 // a word
        };
        let k = kinds.entry(name.to_string()).or_default();
        *k = (*k).max(kind);
    }
    kinds
        .into_iter()
        .map(|(name, kind)| {
            let value = match kind {
                6 => "10".to_string(),
                5 => "00000000-0000-0000-0000-000000000001".to_string(),
                4 => format!("http://{}", backend.plain),
                3 if tls_hosts.contains(&name) => backend.tls.clone(),
                3 => backend.plain.clone(),
                2 => "10.0.0.1".to_string(),
                1 => "/".to_string(),
                _ => "corpus-value".to_string(),
            };
            (name, value)
        })
        .collect()
}

/// The echo backends' addresses (`host:port`).
struct Backends {
    plain: String,
    tls: String,
}

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `text` as a deployment renders its template: placeholders become
/// named values (or ids), which get a value of the kind their place needs
/// like any other.
fn rendered(text: &str) -> String {
    bicep_rendered(&terraform_rendered(text))
}

/// Bicep's `replace(policy, '{name}', value)` placeholders, a whole
/// attribute value `"{name}"`: a backend's or fragment's id becomes that
/// name, any other attribute a named value `{{name}}`. (A `rewrite-uri`
/// template's `{id}` is a URL parameter and stays.)
fn bicep_rendered(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("=\"{") {
        let (head, tail) = rest.split_at(i);
        let attr = head
            .rsplit(|c: char| c.is_whitespace() || c == '<')
            .next()
            .unwrap_or("");
        let inner = &tail[3..];
        let name_len = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(inner.len());
        out.push_str(head);
        if attr != "template" && name_len > 0 && inner[name_len..].starts_with("}\"") {
            let name = &inner[..name_len];
            if matches!(attr, "backend-id" | "fragment-id") {
                out.push_str(&format!("=\"{name}\""));
            } else {
                out.push_str(&format!("=\"{{{{{name}}}}}\""));
            }
            rest = &inner[name_len + 2..];
        } else {
            out.push_str("=\"{");
            rest = inner;
        }
    }
    out.push_str(rest);
    out
}

/// Terraform's `${name}` placeholders (documents kept as `templatefile`
/// templates) as named values `{{name}}`.
fn terraform_rendered(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            out.push_str(&format!("{{{{{}}}}}", &after[..name_len]));
            rest = &after[name_len + 1..];
        } else {
            out.push_str("${");
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The folder the extractor would have written around document `doc`, as
/// API `api` at path `api` (policy documents), backed by `backend`.
fn folder_for(doc: &Document, all: &[Document], api: &str, backend: &Backends, into: &Path) {
    let mut texts = vec![doc.text.clone()];
    if doc.fragment {
        write(
            into,
            &format!("policyFragments/{}/policy.xml", doc.fragment_name()),
            &doc.text,
        );
    } else {
        write(
            into,
            &format!("apis/{api}/apiInformation.json"),
            &json!({"properties": {
                "displayName": api, "path": api, "serviceUrl": format!("http://{}", backend.plain),
                "subscriptionRequired": false, "protocols": ["http", "https"]
            }})
            .to_string(),
        );
        write(
            into,
            &format!("apis/{api}/specification.yaml"),
            "openapi: 3.0.1\ninfo: {title: corpus, version: '1'}\npaths:\n  /:\n    get:\n      operationId: get-root\n      responses: {'200': {description: ok}}\n",
        );
        write(into, &format!("apis/{api}/policy.xml"), &doc.text);
    }
    // The fragments it includes, and those they include, from the same
    // source (repository).
    let mut included = BTreeSet::new();
    let mut next = 0;
    while next < texts.len() {
        for name in attribute_values(&texts[next].clone(), "fragment-id") {
            if !included.insert(name.clone()) {
                continue;
            }
            if let Some(f) = all
                .iter()
                .find(|f| f.fragment && f.origin() == doc.origin() && f.fragment_name() == name)
            {
                write(into, &format!("policyFragments/{name}/policy.xml"), &f.text);
                texts.push(f.text.clone());
            }
        }
        next += 1;
    }
    for (name, value) in named_values(&texts.join("\n"), backend) {
        write(
            into,
            &format!("namedValues/{name}/namedValueInformation.json"),
            &json!({"properties": {"displayName": name, "value": value, "secret": false}})
                .to_string(),
        );
    }
    for text in &texts {
        for id in attribute_values(text, "backend-id") {
            if !id.starts_with('@') {
                write(
                    into,
                    &format!("backends/{id}/backendInformation.json"),
                    &json!({"properties": {"url": format!("http://{}", backend.plain)}})
                        .to_string(),
                );
            }
        }
    }
}

/// `edgegw-cp import apim DIR [extra]`: exit code and the output's lines.
fn import(cp: &ControlPlane, dir: &Path, extra: &[&str]) -> (Option<i32>, Vec<String>) {
    let out = Command::new(cp_bin())
        .args(["import", "apim"])
        .arg(dir)
        .args(["--url", &cp.url(), "--ca-file"])
        .arg(cp.ca_file())
        .args(extra)
        .env("EDGEGW_CP_TOKEN", &cp.admin_token)
        .output()
        .expect("running edgegw-cp");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code(),
        text.lines().map(str::to_string).collect(),
    )
}

/// The first refusal in an import's output.
fn first_reason(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| l.trim())
        .find(|l| l.contains(".xml:") || l.contains(".json:") || l.starts_with("error"))
        .or_else(|| lines.iter().map(|l| l.trim()).find(|l| !l.is_empty()))
        .unwrap_or("no output")
        .to_string()
}

struct Outcome {
    source: String,
    kind: &'static str,
    imported: bool,
    reason: String,
    ran: Option<u16>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: apim_corpus DIR [--report FILE]");
        std::process::exit(2);
    };
    let report = args
        .iter()
        .position(|a| a == "--report")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let docs = documents(&dir);
    if docs.is_empty() {
        eprintln!(
            "{}: no APIM policy documents (<policies> or <fragment> roots) under it; give the folder of the corpus",
            dir.display()
        );
        std::process::exit(1);
    }
    let tmp = TempDir::new("apim-corpus");
    let cp_dir = tmp.0.join("cp");
    std::fs::create_dir_all(&cp_dir).unwrap();
    let cp = ControlPlane::start(&cp_dir);
    // A Redis for the cluster's external cache and limits, as an APIM
    // instance with an external cache has.
    let redis_dir = tmp.0.join("redis");
    std::fs::create_dir_all(&redis_dir).unwrap();
    let redis = RedisServer::start(&redis_dir, free_port());
    let password = tmp.write("redis-password", PASSWORD);
    let redis_doc = json!({"url": format!("redis://127.0.0.1:{}", redis.port),
        "password_file": password.display().to_string()});
    let (status, answer) = cp.admin("PUT", "/v1/redis", Some(&redis_doc));
    assert!(
        matches!(status, 200 | 201),
        "PUT /v1/redis: {status} {answer}"
    );
    // An echo for plain HTTP, and one behind TLS with a certificate of a
    // CA the node trusts, for documents that forward to `https://{{host}}`.
    let plain = TestBackend::echo();
    let ca = TestCa::new(&tmp.0);
    let tls = TestBackend::echo_tls(&ca.leaf(&tmp.0, "echo", &["127.0.0.1"]));
    let backend_addr = Backends {
        plain: plain.addr.to_string(),
        tls: tls.addr.to_string(),
    };

    // Phase 1: each document alone, dry run.
    let mut outcomes = Vec::new();
    for (n, doc) in docs.iter().enumerate() {
        let folder = tmp.0.join(format!("doc-{n}"));
        folder_for(doc, &docs, "corpus", &backend_addr, &folder);
        let (code, lines) = import(&cp, &folder, &["--dry-run"]);
        let imported = code == Some(0);
        outcomes.push(Outcome {
            source: doc.source.display().to_string(),
            kind: if doc.fragment { "fragment" } else { "policies" },
            imported,
            reason: if imported {
                String::new()
            } else {
                first_reason(&lines)
            },
            ran: None,
        });
    }

    // Phase 2: every imported policy document as its own API, served.
    let served: Vec<usize> = (0..docs.len())
        .filter(|&n| outcomes[n].imported && !docs[n].fragment)
        .collect();
    let mut apis = Vec::new();
    for &n in &served {
        let api = format!("c{n}");
        folder_for(
            &docs[n],
            &docs,
            &api,
            &backend_addr,
            &tmp.0.join(format!("run-{n}")),
        );
        let (code, lines) = import(&cp, &tmp.0.join(format!("run-{n}")), &[]);
        if code == Some(0) {
            apis.push((n, api));
        } else {
            outcomes[n].reason = format!(
                "imported alone but not beside the others: {}",
                first_reason(&lines)
            );
        }
    }
    if !apis.is_empty() {
        let names: Vec<&str> = apis.iter().map(|(_, a)| a.as_str()).collect();
        let token = register(&cp, "corpus", &names, None);
        // The node's own identity, for documents that authenticate with
        // the managed identity: a token endpoint that grants every request.
        let body = r#"{"token_type":"Bearer","expires_in":3600,"access_token":"corpus-token"}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let token_endpoint = RawBackend::start(Box::leak(answer.into_boxed_str()).as_bytes());
        let secret = tmp.write("identity-secret", "corpus-secret");
        let identity = format!(
            "[identity]\ntoken_url = \"http://{}/token\"\nclient_id = \"corpus\"\nclient_secret_file = \"{}\"\n",
            token_endpoint.addr,
            secret.display()
        );
        let mut node = ManagedNode::of("apim-corpus", &cp, &token, &identity);
        node.env
            .push(("SSL_CERT_FILE".into(), ca.pem_path.display().to_string()));
        node.start();
        // The last API imported is served once the whole catalog is.
        let last = &apis.last().unwrap().1;
        node.wait_for(&format!("/{last}/"), 30, |s, _| s != 404);
        for (n, api) in &apis {
            let (status, _) = node.get(&format!("/{api}/"));
            outcomes[*n].ran = Some(status);
        }
        node.stop();
    }
    std::thread::sleep(Duration::from_millis(10));

    print(&outcomes, report.as_deref());
}

/// A gateway answer that counts as running the document: any status but
/// none (000: no answer) and none of the gateway's own 5xx.
fn ran(status: u16) -> bool {
    status != 0 && !(500..600).contains(&status)
}

fn print(outcomes: &[Outcome], report: Option<&Path>) {
    let mut table = String::from(
        "| document | kind | imported | served | first reason |\n| --- | --- | --- | --- | --- |\n",
    );
    let mut by_origin: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for o in outcomes {
        let served = match o.ran {
            Some(s) => s.to_string(),
            None => "-".into(),
        };
        println!(
            "{:<9} {:<8} {:<5} {} {}",
            if o.imported { "imported" } else { "refused" },
            o.kind,
            served,
            o.source,
            o.reason
        );
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} |",
            o.source,
            o.kind,
            if o.imported { "yes" } else { "no" },
            served,
            o.reason.replace('|', "\\|")
        );
        let origin = o.source.split('/').next().unwrap_or_default().to_string();
        let e = by_origin.entry(origin).or_default();
        e.0 += 1;
        e.1 += usize::from(o.imported);
        e.2 += usize::from(o.imported && (o.kind == "fragment" || o.ran.is_some_and(ran)));
    }
    let total = outcomes.len();
    let imported = outcomes.iter().filter(|o| o.imported).count();
    let running = outcomes
        .iter()
        .filter(|o| o.imported && (o.kind == "fragment" || o.ran.is_some_and(ran)))
        .count();
    let mut summary = String::from(
        "\n| source | documents | imported | imported and ran |\n| --- | --- | --- | --- |\n",
    );
    for (origin, (n, i, r)) in &by_origin {
        let _ = writeln!(summary, "| {origin} | {n} | {i} | {r} |");
    }
    let pct = |k: usize| 100.0 * k as f64 / total as f64;
    let _ = writeln!(
        summary,
        "| **all** | {total} | {imported} ({:.0}%) | {running} ({:.0}%) |",
        pct(imported),
        pct(running)
    );
    println!("{summary}");
    if let Some(file) = report {
        std::fs::write(file, format!("{table}{summary}"))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}
