//! Declarative configuration for CI/CD through the real binaries:
//! `edgegw-cp export DIR` against a running control plane writes one YAML
//! file per resource (byte-identical for the same state, secrets as
//! references); `edgegw-cp apply DIR [--dry-run] [--prune]` makes another
//! control plane match the folder in one transaction, a second apply
//! changes nothing, a bad folder is refused whole with every problem by
//! file and line, and a gateway synced from the control plane serves what
//! was applied. Every test runs on SQLite and on PostgreSQL.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use edgegw_tests::{
    backends::TestBackend,
    cp::{ControlPlane, Store, cp_bin},
    managed::{ManagedNode, admin_ok, register},
    process::TempDir,
};
use serde_json::{Value, json};

edgegw_tests::on_both_stores!(
    export_then_apply_into_an_empty_control_plane_gives_the_same_files,
    dry_run_reports_and_prune_deletes,
    a_bad_folder_is_refused_whole_with_every_problem_by_file_and_line,
    a_gateway_serves_what_was_applied,
);

/// The secret of the tests' named value `backend-token`.
const SECRET: &str = "s3cr3t-never-in-files";

/// `edgegw-cp COMMAND DIR --url ... --ca-file ...` with the admin token in
/// the environment, as a CI job runs it.
fn cp_cli(cp: &ControlPlane, command: &str, dir: &Path, extra: &[&str]) -> Output {
    Command::new(cp_bin())
        .arg(command)
        .arg(dir)
        .args(["--url", &cp.url(), "--ca-file"])
        .arg(cp.ca_file())
        .args(extra)
        .env("EDGEGW_CP_TOKEN", &cp.admin_token)
        .env("EDGEGW_SECRET_BACKEND_TOKEN", SECRET)
        .output()
        .expect("running edgegw-cp")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every file under `dir` with its bytes, by relative path.
fn files(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A new folder under the test's directory.
fn sub(tmp: &TempDir, name: &str) -> PathBuf {
    let dir = tmp.0.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn revision(cp: &ControlPlane) -> u64 {
    let (status, catalog) = cp.admin("GET", "/v1/catalog", None);
    assert_eq!(status, 200, "{catalog}");
    catalog["revision"].as_u64().unwrap()
}

/// A catalog with every kind of resource, written over the REST API.
fn populate(cp: &ControlPlane) {
    let put = |path: &str, body: Value| {
        admin_ok(cp, "PUT", path, body);
    };
    put(
        "/v1/backends/orders-be",
        json!({"url": "http://127.0.0.1:9000", "protocol": "http1"}),
    );
    put("/v1/named-values/region", json!({"value": "eu-west"}));
    put(
        "/v1/named-values/backend-token",
        json!({"value": SECRET, "secret": true}),
    );
    put(
        "/v1/apis/orders",
        json!({
            "path": "/orders", "backend": "orders-be",
            "subscription_key": {"header": "X-Key", "query": "key"},
            "policies": {"inbound": ["base", {"set-header": {"name": "Authorization", "value": "Bearer {{backend-token}}"}}]},
            "operations": [
                {"name": "get-order", "method": "GET", "url": "/{id}",
                 "policies": {"inbound": ["base", {"rewrite-uri": {"template": "/v2/orders/{id}"}}]}},
                {"name": "list", "method": "GET", "url": "/"}
            ]
        }),
    );
    put(
        "/v1/apis/billing",
        json!({"path": "/billing", "backend": "http://127.0.0.1:9002", "subscription_required": false}),
    );
    put(
        "/v1/products/starter",
        json!({"apis": ["orders", "billing"],
               "policies": {"inbound": [{"quota": {"calls": 10000, "renewal_period": 604800}}, "base"]}}),
    );
    admin_ok(
        cp,
        "POST",
        "/v1/subscriptions",
        json!({"id": "contoso", "scope": "product:starter"}),
    );
    put(
        "/v1/subscriptions/billing-only",
        json!({"scope": "api:billing", "state": "suspended"}),
    );
    put(
        "/v1/fragments/stamp",
        json!({"policies": "<fragment>\n  <set-header name=\"x-stamp\" exists-action=\"override\"><value>{{region}}</value></set-header>\n</fragment>\n"}),
    );
    put(
        "/v1/policies",
        json!({"inbound": [{"set-header": {"name": "x-region", "value": "{{region}}"}}, {"include-fragment": "stamp"}]}),
    );
    put(
        "/v1/dos-profiles/strict",
        json!({"packets_per_sec": 1000, "packet_burst": 2000, "deny": ["198.51.100.0/24"],
               "port_groups": [{"name": "api", "tcp": [8080], "syn_per_sec": 50}]}),
    );
    put(
        "/v1/redis",
        json!({"url": "redis://127.0.0.1:6390", "connect_timeout_ms": 500}),
    );
}

fn export_then_apply_into_an_empty_control_plane_gives_the_same_files(store: Store) {
    let tmp = TempDir::new("cpapply-rt");
    let source = ControlPlane::launch(store, &sub(&tmp, "a"), &[]);
    populate(&source);

    let first = tmp.0.join("first");
    let out = cp_cli(&source, "export", &first, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("exported 12 resources"),
        "{}",
        text(&out)
    );
    let exported = files(&first);
    let names: Vec<String> = exported.keys().map(|p| p.display().to_string()).collect();
    assert_eq!(
        names,
        [
            "apis/billing.yaml",
            "apis/orders.yaml",
            "backends/orders-be.yaml",
            "dos-profiles/strict.yaml",
            "fragments/stamp.yaml",
            "named-values/backend-token.yaml",
            "named-values/region.yaml",
            "policies.yaml",
            "products/starter.yaml",
            "redis.yaml",
            "subscriptions/billing-only.yaml",
            "subscriptions/contoso.yaml",
        ],
        "{}",
        text(&out)
    );
    // Secrets are references, keys are never exported.
    for (path, body) in &exported {
        assert!(!body.contains(SECRET), "{}: {body}", path.display());
        assert!(!body.contains("key_sha256"), "{}: {body}", path.display());
    }
    assert_eq!(
        exported[Path::new("named-values/backend-token.yaml")],
        "name: backend-token\nsecret: true\nvalue_from:\n  env: EDGEGW_SECRET_BACKEND_TOKEN\n"
    );
    assert_eq!(
        exported[Path::new("subscriptions/billing-only.yaml")],
        "id: billing-only\nscope: api:billing\nstate: suspended\n"
    );
    // The same state exports the same bytes; the layout's files of
    // resources that are gone are removed, other files stay.
    let again = tmp.0.join("again");
    write(&again, "apis/gone.yaml", &api_file("gone", "/gone"));
    write(&again, "README.md", "the pipeline's notes\n");
    let out = cp_cli(&source, "export", &again, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("removed 1 stale file(s): apis/gone.yaml"),
        "{}",
        text(&out)
    );
    let mut kept = files(&again);
    assert_eq!(
        kept.remove(Path::new("README.md")).as_deref(),
        Some("the pipeline's notes\n")
    );
    assert_eq!(kept, exported);

    // Into an empty control plane: everything created, then the same files.
    let target = ControlPlane::launch(store, &sub(&tmp, "b"), &[]);
    let out = cp_cli(&target, "apply", &first, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("created: 12: "), "{}", text(&out));
    assert!(
        stdout(&out).contains("applied at revision"),
        "{}",
        text(&out)
    );
    let second = tmp.0.join("second");
    let out = cp_cli(&target, "export", &second, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(files(&second), exported);

    // The secret's value came from the environment: it is in the bundle.
    let token = register(&target, "edge", &["orders"], Some("strict"));
    let bundle = target.gateway(&token, "GET", "/v1/gateway/config?wait=1", &[], None);
    assert_eq!(bundle.status, 200, "{}", bundle.body);
    assert!(bundle.body.contains(SECRET), "{}", bundle.body);

    // A second apply changes nothing, and writes nothing.
    let before = revision(&target);
    let out = cp_cli(&target, "apply", &first, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("no change: the control plane matches the folder"),
        "{}",
        text(&out)
    );
    assert!(stdout(&out).contains("unchanged: 12: "), "{}", text(&out));
    assert_eq!(revision(&target), before);

    // Without the secret's variable, apply is refused at its line.
    let out = Command::new(cp_bin())
        .arg("apply")
        .arg(&first)
        .args(["--url", &target.url(), "--ca-file"])
        .arg(target.ca_file())
        .env("EDGEGW_CP_TOKEN", &target.admin_token)
        .env_remove("EDGEGW_SECRET_BACKEND_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).starts_with(
            "named-values/backend-token.yaml:4: environment variable EDGEGW_SECRET_BACKEND_TOKEN is not set"
        ),
        "{}",
        text(&out)
    );
}

fn api_file(name: &str, path: &str) -> String {
    format!(
        "name: {name}\npath: {path}\nbackend: http://127.0.0.1:9\nsubscription_required: false\n"
    )
}

fn dry_run_reports_and_prune_deletes(store: Store) {
    let tmp = TempDir::new("cpapply-prune");
    let cp = ControlPlane::launch(store, &sub(&tmp, "cp"), &[]);
    let dir = tmp.0.join("folder");
    write(&dir, "apis/alpha.yaml", &api_file("alpha", "/alpha"));
    write(&dir, "apis/beta.yaml", &api_file("beta", "/beta"));
    write(
        &dir,
        "README.md",
        "files other than the layout's are not read\n",
    );
    let out = cp_cli(&cp, "apply", &dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("created: 2: apis/alpha, apis/beta"),
        "{}",
        text(&out)
    );

    // A changed API and a new product: --dry-run shows them, exits 2 and
    // changes nothing.
    write(&dir, "apis/alpha.yaml", &api_file("alpha", "/alpha-v2"));
    write(&dir, "products/gold.yaml", "apis: [alpha]\n");
    let before = revision(&cp);
    let out = cp_cli(&cp, "apply", &dir, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let shown = stdout(&out);
    assert!(shown.contains("created: 1: products/gold"), "{shown}");
    assert!(shown.contains("changed: 1: apis/alpha (path)"), "{shown}");
    assert!(shown.contains("unchanged: 1: apis/beta"), "{shown}");
    assert!(shown.contains("dry run: nothing was changed"), "{shown}");
    assert_eq!(revision(&cp), before);
    assert_eq!(cp.admin("GET", "/v1/apis/alpha", None).1["path"], "/alpha");
    assert_eq!(cp.admin("GET", "/v1/products/gold", None).0, 404);

    let out = cp_cli(&cp, "apply", &dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(revision(&cp), before + 1, "one apply is one write");
    assert_eq!(
        cp.admin("GET", "/v1/apis/alpha", None).1["path"],
        "/alpha-v2"
    );
    assert_eq!(cp.admin("GET", "/v1/products/gold", None).0, 200);
    // Nothing left to do: --dry-run exits 0.
    let out = cp_cli(&cp, "apply", &dir, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A resource without a file is kept unless --prune.
    std::fs::remove_file(dir.join("apis/beta.yaml")).unwrap();
    let out = cp_cli(&cp, "apply", &dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("not in the folder, kept: 1: apis/beta (--prune deletes them)"),
        "{}",
        text(&out)
    );
    assert_eq!(cp.admin("GET", "/v1/apis/beta", None).0, 200);
    let out = cp_cli(&cp, "apply", &dir, &["--prune", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stdout(&out).contains("deleted: 1: apis/beta"),
        "{}",
        text(&out)
    );
    assert_eq!(cp.admin("GET", "/v1/apis/beta", None).0, 200);
    let out = cp_cli(&cp, "apply", &dir, &["--prune"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(cp.admin("GET", "/v1/apis/beta", None).0, 404);

    // Pruning what a gateway serves is refused, naming the gateway.
    register(&cp, "edge", &["alpha"], None);
    std::fs::remove_file(dir.join("products/gold.yaml")).unwrap();
    std::fs::remove_file(dir.join("apis/alpha.yaml")).unwrap();
    let out = cp_cli(&cp, "apply", &dir, &["--prune"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("gateway \"edge\": api \"alpha\" does not exist"),
        "{}",
        text(&out)
    );
    assert_eq!(cp.admin("GET", "/v1/apis/alpha", None).0, 200);
    assert_eq!(cp.admin("GET", "/v1/products/gold", None).0, 200);
}

fn a_bad_folder_is_refused_whole_with_every_problem_by_file_and_line(store: Store) {
    let tmp = TempDir::new("cpapply-bad");
    let cp = ControlPlane::launch(store, &sub(&tmp, "cp"), &[]);
    let dir = tmp.0.join("folder");
    // A good API, then one problem of each kind.
    write(&dir, "apis/good.yaml", &api_file("good", "/good"));
    write(
        &dir,
        "apis/broken.yaml",
        "name: broken\npath: /broken\nbackend: [http://127.0.0.1:9\n",
    );
    write(
        &dir,
        "backends/be.yaml",
        "name: be\nurl: http://127.0.0.1:9000\nprotocoll: http1\n",
    );
    write(&dir, "products/gold.yaml", "apis:\n  - good\n  - missing\n");
    write(
        &dir,
        "apis/limited.yaml",
        "name: limited\npath: /limited\nbackend: http://127.0.0.1:9\npolicies:\n  inbound:\n    - base\n    - rate-limt:\n        calls: 5\n        renewal_period: 60\n",
    );
    let out = cp_cli(&cp, "apply", &dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let lines: Vec<&str> = std::str::from_utf8(&out.stderr).unwrap().lines().collect();
    assert_eq!(lines.len(), 5, "{}", text(&out));
    let find = |prefix: &str, what: &str| {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(prefix) && l.contains(what)),
            "no line {prefix}...{what}: {}",
            text(&out)
        );
    };
    find("apis/broken.yaml:", "invalid YAML");
    find("backends/be.yaml:3: ", "unknown field `protocoll`");
    find("products/gold.yaml:3: ", "api \"missing\"");
    find("apis/limited.yaml:7: ", "rate-limt");
    assert_eq!(
        lines[4],
        format!(
            "edgegw-cp: apply refused: 4 problem(s) in {}; nothing was changed",
            dir.display()
        )
    );
    // Nothing was created, the good API included.
    assert_eq!(cp.admin("GET", "/v1/apis", None).1, json!([]));
    assert_eq!(cp.admin("GET", "/v1/backends", None).1, json!([]));

    // Problems the control plane finds (shapes, then the gateway's own
    // validation, which stops at the first API it refuses) are all listed
    // too, each API checked on its own; --dry-run of a refused folder
    // exits 1 as well.
    let dir = tmp.0.join("folder2");
    write(
        &dir,
        "apis/good.yaml",
        &format!(
            "{}operations:\n  - name: get\n    method: GET\n    url: /x\n    verb: GET\n",
            api_file("good", "/good")
        ),
    );
    write(
        &dir,
        "apis/one.yaml",
        "path: one\nbackend: http://127.0.0.1:9\n",
    );
    write(
        &dir,
        "apis/three.yaml",
        "path: /three\nbackend: http://127.0.0.1:9\npolicies:\n  inbound:\n    - rate-limt: {calls: 1}\n",
    );
    write(
        &dir,
        "apis/two.yaml",
        "path: /two\nbackend: not-a-backend\n",
    );
    let out = cp_cli(&cp, "apply", &dir, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let lines: Vec<&str> = std::str::from_utf8(&out.stderr).unwrap().lines().collect();
    assert_eq!(lines.len(), 5, "{}", text(&out));
    assert!(
        lines[0].starts_with(
            "apis/good.yaml:9: api \"good\" at /operations/0/verb: unknown field `verb`"
        ),
        "{}",
        text(&out)
    );
    assert!(
        lines[1].starts_with("apis/one.yaml:1: api \"one\""),
        "{}",
        text(&out)
    );
    assert!(
        lines[2].starts_with("apis/three.yaml:5: api \"three\"") && lines[2].contains("rate-limt"),
        "{}",
        text(&out)
    );
    assert!(
        lines[3].starts_with("apis/two.yaml:2: api \"two\"") && lines[3].contains("not-a-backend"),
        "{}",
        text(&out)
    );
    assert!(lines[4].contains("4 problem(s)"), "{}", text(&out));
    assert_eq!(cp.admin("GET", "/v1/apis", None).1, json!([]));
}

fn a_gateway_serves_what_was_applied(store: Store) {
    let tmp = TempDir::new("cpapply-gw");
    let cp = ControlPlane::launch(store, &sub(&tmp, "cp"), &[]);
    let backend = TestBackend::echo();
    let dir = tmp.0.join("folder");
    let api = |greeting: &str| {
        format!(
            "name: echo\npath: /echo\nbackend: http://{}\noperations:\n  - name: get-item\n    method: GET\n    url: /items/{{id}}\npolicies:\n  inbound:\n    - base\n    - set-header: {{name: x-greeting, value: \"{greeting}\"}}\n    - set-header: {{name: x-token, value: \"{{{{backend-token}}}}\"}}\n",
            backend.addr
        )
    };
    write(&dir, "apis/echo.yaml", &api("hello"));
    write(
        &dir,
        "named-values/backend-token.yaml",
        "secret: true\nvalue_from:\n  env: EDGEGW_SECRET_BACKEND_TOKEN\n",
    );
    write(&dir, "products/basic.yaml", "apis: [echo]\n");
    write(&dir, "subscriptions/sub-1.yaml", "scope: product:basic\n");
    let out = cp_cli(&cp, "apply", &dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("subscription sub-1: keys were generated"),
        "{}",
        text(&out)
    );
    let key = admin_ok(
        &cp,
        "POST",
        "/v1/subscriptions/sub-1/regenerate?key=primary",
        json!({}),
    )["primary_key"]
        .as_str()
        .unwrap()
        .to_string();

    let token = register(&cp, "edge", &["echo"], None);
    let mut node = ManagedNode::of("cpapply-node", &cp, &token, "");
    node.start();
    let (status, body) = node.wait_keyed("/echo/items/7", Some(&key), 30, |s, _| s == 200);
    assert_eq!(status, 200, "{body}\n{}", node.log());
    let echoed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["headers"]["x-greeting"], "hello", "{body}");
    assert_eq!(echoed["headers"]["x-token"], SECRET, "{body}");
    // No key: 401, as the applied product requires one.
    assert_eq!(node.get("/echo/items/7").0, 401);

    // A changed policy reaches the gateway; the subscription's keys stay.
    write(&dir, "apis/echo.yaml", &api("bonjour"));
    let out = cp_cli(&cp, "apply", &dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        stdout(&out).contains("changed: 1: apis/echo (policies)"),
        "{}",
        text(&out)
    );
    let (status, body) = node.wait_keyed("/echo/items/7", Some(&key), 30, |s, b| {
        s == 200 && b.contains("bonjour")
    });
    assert_eq!(status, 200, "{body}\n{}", node.log());

    // Suspending the subscription in the folder keeps its keys and
    // refuses its calls.
    write(
        &dir,
        "subscriptions/sub-1.yaml",
        "scope: product:basic\nstate: suspended\n",
    );
    let out = cp_cli(&cp, "apply", &dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (status, body) = node.wait_keyed("/echo/items/7", Some(&key), 30, |s, _| s != 200);
    assert!(status == 401 || status == 403, "{status} {body}");
    write(&dir, "subscriptions/sub-1.yaml", "scope: product:basic\n");
    let out = cp_cli(&cp, "apply", &dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (status, body) = node.wait_keyed("/echo/items/7", Some(&key), 30, |s, _| s == 200);
    assert_eq!(status, 200, "the key survived both applies: {body}");
    node.stop();
}
