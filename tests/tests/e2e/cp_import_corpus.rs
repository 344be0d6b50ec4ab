//! Real public OpenAPI documents (`edgegw_tests::cp::corpus`: GitHub,
//! OpenAI, Anthropic, Cohere, Azure OpenAI, Blockfrost, Directus and two
//! OpenAPI examples; 20 KB to 13 MB, JSON and YAML, 3.0 and 3.1) imported
//! through the real `edgegw-cp` and served by a real `edgegw`: each is
//! taken whole (every operation imported, merged or noted), and every
//! imported operation routes to the backend. Prints, per document, the
//! operations in it, imported, merged, skipped and routed.

use std::{
    io::Write,
    process::{Command, Stdio},
    time::Instant,
};

use edgegw_tests::{
    backends::TestBackend,
    cp::{ControlPlane, Store, corpus},
    managed::{ManagedNode, admin_ok, register},
    process::TempDir,
};
use serde_json::{Value, json};

edgegw_tests::on_both_stores!(real_specifications_import_whole_and_every_operation_routes);

fn import(cp: &ControlPlane, query: &str, body: &[u8]) -> (u16, Value) {
    let answer = cp.request(
        "POST",
        &format!("/v1/apis/import?{query}"),
        Some(&cp.admin_token),
        &[],
        Some(body),
    );
    let json = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    (answer.status, json)
}

/// Sends `method` to every URL with one curl process (keep-alive); the
/// status of each, in order.
fn statuses(method: &str, urls: &[String], key: &str) -> Vec<u16> {
    let mut config = String::new();
    for url in urls {
        config.push_str(&format!("url = \"{url}\"\noutput = \"/dev/null\"\n"));
    }
    let mut args = vec![
        "-sS".to_string(),
        "--max-time".into(),
        "60".into(),
        "-H".into(),
        format!("Ocp-Apim-Subscription-Key: {key}"),
        "-w".into(),
        "%{http_code}\\n".into(),
        "-K".into(),
        "-".into(),
    ];
    if method == "HEAD" {
        args.push("-I".into());
    } else {
        args.extend(["-X".into(), method.into()]);
    }
    let mut child = Command::new("curl")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running curl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(config.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let got: Vec<u16> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert_eq!(
        got.len(),
        urls.len(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    got
}

/// A request path for an operation's URL template: parameters as "p1".
fn request_path(prefix: &str, template: &str) -> String {
    let path: Vec<String> = template
        .split('/')
        .map(|s| {
            if s.starts_with('{') {
                "p1".to_string()
            } else {
                s.to_string()
            }
        })
        .collect();
    format!("{prefix}{}", path.join("/"))
}

struct Row {
    label: &'static str,
    bytes: usize,
    format: String,
    version: String,
    in_document: u64,
    imported: u64,
    merged: u64,
    skipped: u64,
    routed: usize,
    millis: u128,
}

fn real_specifications_import_whole_and_every_operation_routes(store: Store) {
    let tmp = TempDir::new("cpcorpus");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    let backend = TestBackend::echo();
    let backend_url = format!("http://{}", backend.addr);
    let mut rows = Vec::new();
    for spec in corpus::SPECS {
        let body = corpus::read(&spec);
        let label = spec.label;
        // A dry run shows the report (and the backend the document's
        // servers give) and writes nothing.
        let (status, dry) = import(
            &cp,
            &format!("name={label}&path=/{label}&dry_run=true"),
            &body,
        );
        match status {
            200 => {
                assert_eq!(dry["dry_run"], true, "{label}");
                assert_eq!(dry["report"]["backend"]["from"], "servers[0]", "{label}");
            }
            // Directus names no servers.
            _ => assert!(
                dry["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("?backend="),
                "{label}: {status} {dry}"
            ),
        }
        assert_eq!(cp.admin("GET", &format!("/v1/apis/{label}"), None).0, 404);

        let started = Instant::now();
        let (status, answer) = import(
            &cp,
            &format!("name={label}&path=/{label}&backend={backend_url}"),
            &body,
        );
        let millis = started.elapsed().as_millis();
        assert_eq!(status, 201, "{label}: {answer}");
        let report = &answer["report"];
        let count = |k: &str| report["operations"][k].as_u64().unwrap();
        let (in_document, imported, merged, skipped) = (
            count("in_document"),
            count("imported"),
            count("merged"),
            count("skipped"),
        );
        assert_eq!(in_document, spec.operations as u64, "{label}: {report}");
        assert_eq!(
            imported + merged + skipped,
            in_document,
            "{label}: every operation is imported, merged or skipped: {report}"
        );
        assert_eq!(
            answer["api"]["operations"].as_array().unwrap().len() as u64,
            imported
        );
        // Every operation not imported as its own has a note that says
        // where (JSON pointer) and why.
        let notes = report["notes"].as_array().unwrap();
        let per_operation = notes
            .iter()
            .filter(|n| {
                n["method"].is_string() && n["note"].as_str().unwrap().contains("merged into")
            })
            .count() as u64;
        assert_eq!(per_operation, merged, "{label}: {report}");
        for note in notes {
            assert!(note["pointer"].as_str().unwrap().starts_with('/'), "{note}");
            assert!(!note["note"].as_str().unwrap().is_empty(), "{note}");
        }
        rows.push(Row {
            label,
            bytes: body.len(),
            format: report["format"].as_str().unwrap().into(),
            version: report["openapi"].as_str().unwrap().into(),
            in_document,
            imported,
            merged,
            skipped,
            routed: 0,
            millis,
        });
    }

    // Swagger 2.0: refused, saying so and what to do.
    let (status, body) = import(
        &cp,
        &format!("name=sw&path=/sw&backend={backend_url}"),
        &corpus::read(&corpus::SWAGGER_PETSTORE),
    );
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("Swagger 2.0 documents are not imported: convert"),
        "{message}"
    );

    // One gateway serves them all; every imported operation routes.
    let labels: Vec<&str> = rows.iter().map(|r| r.label).collect();
    let token = register(&cp, "corpus", &labels, None);
    let key = admin_ok(
        &cp,
        "POST",
        "/v1/subscriptions",
        json!({"id": "all", "scope": "all"}),
    )["primary_key"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, gw) = cp.admin("GET", "/v1/gateways/corpus", None);
    let desired = gw["desired_version"].clone();
    let mut node = ManagedNode::of("cpcorpusgw", &cp, &token, "");
    node.start();
    let status = node.wait_status(60, |v| v["version"] == desired);
    assert_eq!(
        status["control_plane"]["version"],
        desired,
        "{}",
        node.log()
    );
    let base = format!("http://127.0.0.1:{}", node.port);
    for row in &mut rows {
        let (_, api) = cp.admin("GET", &format!("/v1/apis/{}", row.label), None);
        let mut by_method: Vec<(String, Vec<String>)> = Vec::new();
        for op in api["operations"].as_array().unwrap() {
            let method = op["method"].as_str().unwrap().to_string();
            let url = format!(
                "{base}{}",
                request_path(&format!("/{}", row.label), op["url"].as_str().unwrap())
            );
            match by_method.iter_mut().find(|(m, _)| *m == method) {
                Some((_, urls)) => urls.push(url),
                None => by_method.push((method, vec![url])),
            }
        }
        for (method, urls) in &by_method {
            let got = statuses(method, urls, &key);
            for (url, status) in urls.iter().zip(&got) {
                if *status == 200 {
                    row.routed += 1;
                } else {
                    eprintln!("{}: {method} {url}: {status}", row.label);
                }
            }
        }
    }

    eprintln!(
        "\n{:<14} {:>10} {:<5} {:<6} {:>8} {:>8} {:>6} {:>7} {:>6} {:>9}",
        "document",
        "bytes",
        "fmt",
        "oas",
        "in doc",
        "imported",
        "merged",
        "skipped",
        "routed",
        "import ms"
    );
    for r in &rows {
        eprintln!(
            "{:<14} {:>10} {:<5} {:<6} {:>8} {:>8} {:>6} {:>7} {:>6} {:>9}",
            r.label,
            r.bytes,
            r.format,
            r.version,
            r.in_document,
            r.imported,
            r.merged,
            r.skipped,
            r.routed,
            r.millis
        );
    }
    for r in &rows {
        assert_eq!(
            r.routed as u64, r.imported,
            "{}: every imported operation routes",
            r.label
        );
    }
}
