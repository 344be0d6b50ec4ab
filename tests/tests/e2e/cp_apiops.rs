//! APIOps import through the real `edgegw-cp import apim DIR`: a folder
//! shaped as the APIM extractor writes it (two APIs whose operations come
//! from their OpenAPI specifications, a product, named values, a policy
//! fragment included at the global and at an operation scope,
//! operation-level policies, and resources edgegw skips) is imported in
//! one transaction and served by a real gateway; `--dry-run` creates
//! nothing; a bad folder is refused whole with every problem by file and
//! line, and `--partial` imports the rest. Every test runs on SQLite and
//! on PostgreSQL.

use std::{
    path::Path,
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
    an_apiops_folder_is_imported_and_served,
    a_bad_folder_is_refused_whole_and_partial_takes_the_rest,
);

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A new folder under the test's directory.
fn sub(tmp: &TempDir, name: &str) -> std::path::PathBuf {
    let dir = tmp.0.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn import(cp: &ControlPlane, dir: &Path, extra: &[&str]) -> Output {
    Command::new(cp_bin())
        .args(["import", "apim"])
        .arg(dir)
        .args(["--url", &cp.url(), "--ca-file"])
        .arg(cp.ca_file())
        .args(extra)
        .env("EDGEGW_CP_TOKEN", &cp.admin_token)
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

fn count(cp: &ControlPlane, kind: &str) -> usize {
    let (status, list) = cp.admin("GET", &format!("/v1/{kind}"), None);
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().len()
}

/// Two APIs, a product, named values, a fragment, operation policies and
/// the resources edgegw skips, as the extractor lays them out.
fn apiops_folder(dir: &Path, backend: &str) {
    write(
        dir,
        "policy.xml",
        "<policies>\n  <inbound>\n    <include-fragment fragment-id=\"stamp\" />\n  </inbound>\n  <backend>\n    <forward-request />\n  </backend>\n  <outbound />\n  <on-error />\n</policies>\n",
    );
    write(
        dir,
        "policyFragments/stamp/policy.xml",
        "<fragment>\n  <set-query-parameter name=\"stamp\" exists-action=\"append\">\n    <value>{{stamp}}</value>\n  </set-query-parameter>\n</fragment>\n",
    );
    write(
        dir,
        "policyFragments/stamp/policyFragmentInformation.json",
        r#"{"properties": {"description": "marks requests that passed the gateway", "format": "rawxml"}}"#,
    );
    write(
        dir,
        "namedValues/stamp-nv/namedValueInformation.json",
        r#"{"properties": {"displayName": "stamp", "secret": false, "tags": [], "value": "edge"}}"#,
    );
    write(
        dir,
        "named values/backend-key/namedValueInformation.json",
        r#"{"properties": {"displayName": "backend-key", "secret": true, "value": "k3y"}}"#,
    );
    write(
        dir,
        "backends/orders-be/backendInformation.json",
        &format!(
            r#"{{"properties": {{"description": "orders", "protocol": "http", "url": "http://{backend}"}}}}"#
        ),
    );
    write(
        dir,
        "apis/orders/apiInformation.json",
        &format!(
            r#"{{
  "properties": {{
    "apiRevision": "1",
    "displayName": "Orders",
    "isCurrent": true,
    "path": "orders",
    "protocols": ["https"],
    "serviceUrl": "http://{backend}",
    "subscriptionKeyParameterNames": {{"header": "Ocp-Apim-Subscription-Key", "query": "subscription-key"}},
    "subscriptionRequired": true
  }}
}}"#
        ),
    );
    write(
        dir,
        "apis/orders/specification.yaml",
        "openapi: 3.0.1\ninfo: {title: Orders, version: '1'}\npaths:\n  /:\n    get: {operationId: list-orders}\n  /{id}:\n    get:\n      operationId: get-order\n      parameters: [{name: id, in: path, required: true, schema: {type: string}}]\n",
    );
    write(
        dir,
        "apis/orders/policy.xml",
        "<policies>\n  <inbound>\n    <base />\n    <set-header name=\"x-key\" exists-action=\"override\">\n      <value>{{backend-key}}</value>\n    </set-header>\n  </inbound>\n  <backend><base /></backend>\n  <outbound><base /></outbound>\n  <on-error><base /></on-error>\n</policies>\n",
    );
    write(
        dir,
        "apis/orders/operations/get-order/policy.xml",
        "<policies>\n  <inbound>\n    <base />\n    <include-fragment fragment-id=\"stamp\" />\n  </inbound>\n</policies>\n",
    );
    write(dir, "apis/orders/tags.json", r#"[{"name": "sales"}]"#);
    write(
        dir,
        "apis/billing/apiInformation.json",
        &format!(
            r#"{{"properties": {{"displayName": "Billing", "path": "billing", "serviceUrl": "http://{backend}", "subscriptionRequired": true}}}}"#
        ),
    );
    write(
        dir,
        "apis/billing/specification.json",
        r#"{"openapi": "3.0.1", "info": {"title": "Billing", "version": "1"},
  "paths": {"/invoices/{id}": {"get": {"operationId": "get-invoice"}}}}"#,
    );
    write(
        dir,
        "apis/billing/operations/get-invoice/policy.xml",
        "<policies>\n  <inbound>\n    <base />\n    <set-header name=\"x-op\" exists-action=\"override\"><value>invoice</value></set-header>\n  </inbound>\n</policies>\n",
    );
    write(
        dir,
        "products/starter/productInformation.json",
        r#"{"properties": {"approvalRequired": false, "displayName": "Starter", "state": "published", "subscriptionRequired": true}}"#,
    );
    write(
        dir,
        "products/starter/apis.json",
        "[\n  {\"name\": \"orders\"},\n  {\"name\": \"billing\"}\n]",
    );
    write(
        dir,
        "products/starter/policy.xml",
        "<policies>\n  <inbound>\n    <base />\n    <set-header name=\"x-product\" exists-action=\"override\"><value>starter</value></set-header>\n  </inbound>\n</policies>\n",
    );
    write(
        dir,
        "products/starter/groups.json",
        r#"[{"name": "developers"}]"#,
    );
    write(
        dir,
        "groups/developers/groupInformation.json",
        r#"{"properties": {"displayName": "Developers"}}"#,
    );
    write(
        dir,
        "loggers/ai/loggerInformation.json",
        r#"{"properties": {"loggerType": "applicationInsights"}}"#,
    );
    write(
        dir,
        "diagnostics/applicationinsights/diagnosticInformation.json",
        r#"{"properties": {"loggerId": "ai"}}"#,
    );
    write(
        dir,
        "tags/sales/tagInformation.json",
        r#"{"properties": {"displayName": "sales"}}"#,
    );
}

fn an_apiops_folder_is_imported_and_served(store: Store) {
    let tmp = TempDir::new("cpapiops-ok");
    let cp = ControlPlane::launch(store, &sub(&tmp, "cp"), &[]);
    let backend = TestBackend::echo();
    let dir = tmp.0.join("apim");
    apiops_folder(&dir, &backend.addr.to_string());

    // A dry run reports and creates nothing.
    let out = import(&cp, &dir, &["--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.contains("would import: 8: "), "{}", text(&out));
    assert!(
        stdout.contains("dry run: nothing was created"),
        "{}",
        text(&out)
    );
    for kind in ["apis", "products", "named-values", "fragments", "backends"] {
        assert_eq!(count(&cp, kind), 0, "{kind} after a dry run");
    }

    let out = import(&cp, &dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    for want in [
        "imported: 8: ",
        "apis/orders",
        "apis/billing",
        "products/starter",
        "named-values/stamp",
        "named-values/backend-key",
        "fragments/stamp",
        "backends/orders-be",
        "policies",
        "skipped: groups/: developer-portal groups",
        "skipped: loggers/: ",
        "skipped: diagnostics/: ",
        "skipped: tags/: ",
        "skipped: apis/orders/tags.json: ",
        "skipped: products/starter/groups.json: ",
        "imported at revision",
    ] {
        assert!(stdout.contains(want), "{want}\n{}", text(&out));
    }
    // Operations came from the specifications, with their policies.
    let (_, orders) = cp.admin("GET", "/v1/apis/orders", None);
    let ops: Vec<&str> = orders["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["list-orders", "get-order"], "{orders}");
    assert_eq!(orders["path"], "/orders");
    let (_, fragment) = cp.admin("GET", "/v1/fragments/stamp", None);
    assert_eq!(
        fragment["description"],
        "marks requests that passed the gateway"
    );
    // The secret named value is not shown.
    let (_, secret) = cp.admin("GET", "/v1/named-values/backend-key", None);
    assert_eq!(secret.get("value"), None, "{secret}");

    let key = admin_ok(
        &cp,
        "POST",
        "/v1/subscriptions",
        json!({"id": "s1", "scope": "product:starter"}),
    )["primary_key"]
        .as_str()
        .unwrap()
        .to_string();
    let token = register(&cp, "edge", &["orders", "billing"], None);
    let mut node = ManagedNode::of("cpapiops-node", &cp, &token, "");
    node.start();

    // get-order: the fragment at the global scope and at the operation's.
    let (status, body) = node.wait_keyed("/orders/7", Some(&key), 30, |s, _| s == 200);
    assert_eq!(status, 200, "{body}\n{}", node.log());
    let echoed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["query"], "stamp=edge&stamp=edge", "{body}");
    assert_eq!(echoed["headers"]["x-key"], "k3y", "{body}");
    assert_eq!(echoed["headers"]["x-product"], "starter", "{body}");
    // billing: the global inclusion only, and its operation's policy.
    let (status, body) = node.wait_keyed("/billing/invoices/3", Some(&key), 30, |s, _| s == 200);
    assert_eq!(status, 200, "{body}");
    let echoed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["headers"]["x-op"], "invoice", "{body}");
    assert_eq!(echoed["query"], "stamp=edge", "{body}");
    assert_eq!(echoed["headers"].get("x-key"), None, "{body}");
    // The product requires a key; an operation not in the specification is 404.
    assert_eq!(node.get("/orders/7").0, 401);
    assert_eq!(
        node.wait_keyed("/billing/other", Some(&key), 30, |s, _| s == 404)
            .0,
        404
    );

    // Importing the same folder again changes nothing.
    let out = import(&cp, &dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no change"),
        "{}",
        text(&out)
    );
}

fn a_bad_folder_is_refused_whole_and_partial_takes_the_rest(store: Store) {
    let tmp = TempDir::new("cpapiops-bad");
    let cp = ControlPlane::launch(store, &sub(&tmp, "cp"), &[]);
    let dir = tmp.0.join("apim");
    let info = |path: &str| {
        format!(r#"{{"properties": {{"path": "{path}", "serviceUrl": "http://127.0.0.1:9"}}}}"#)
    };
    let spec = "openapi: 3.0.1\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get: {operationId: get-a}\n";
    // A good API, taken by --partial.
    write(&dir, "apis/good/apiInformation.json", &info("good"));
    write(&dir, "apis/good/specification.yaml", spec);
    // Malformed XML, at line 3.
    write(&dir, "apis/broken-xml/apiInformation.json", &info("bx"));
    write(&dir, "apis/broken-xml/specification.yaml", spec);
    write(
        &dir,
        "apis/broken-xml/policy.xml",
        "<policies>\n  <inbound>\n    <set-header name=\"x\" exists-action=\"override\"<value>v</value></set-header>\n  </inbound>\n</policies>\n",
    );
    // Invalid JSON, at line 2.
    write(
        &dir,
        "apis/broken-json/apiInformation.json",
        "{\n  \"properties\": {\"path\": \"bj\",}\n}\n",
    );
    write(&dir, "apis/broken-json/specification.yaml", spec);
    // No specification.
    write(&dir, "apis/no-spec/apiInformation.json", &info("ns"));
    // A product listing an API that is not in the folder, at line 3.
    write(
        &dir,
        "products/p1/productInformation.json",
        r#"{"properties": {"subscriptionRequired": true}}"#,
    );
    write(
        &dir,
        "products/p1/apis.json",
        "[\n  {\"name\": \"good\"},\n  {\"name\": \"ghost\"}\n]\n",
    );
    // Fragments that include each other, included by the global policies.
    write(
        &dir,
        "policyFragments/a/policy.xml",
        "<fragment>\n  <include-fragment fragment-id=\"b\" />\n</fragment>\n",
    );
    write(
        &dir,
        "policyFragments/b/policy.xml",
        "<fragment>\n  <include-fragment fragment-id=\"a\" />\n</fragment>\n",
    );
    write(
        &dir,
        "policy.xml",
        "<policies>\n  <inbound>\n    <include-fragment fragment-id=\"a\" />\n  </inbound>\n</policies>\n",
    );

    for extra in [&[][..], &["--dry-run"][..]] {
        let out = import(&cp, &dir, extra);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        for want in [
            "refused: apis/broken-xml/policy.xml:3: malformed XML",
            "refused: apis/broken-json/apiInformation.json:2: invalid JSON",
            "refused: apis/no-spec/: specification.yaml (or .json) is missing",
            "refused: products/p1/apis.json:3: api \"ghost\" is not in the folder",
            "fragment \"a\" includes itself (chain a -> b -> a)",
            "nothing was created",
        ] {
            assert!(stderr.contains(want), "{want}\n{}", text(&out));
        }
        for kind in ["apis", "products", "fragments"] {
            assert_eq!(count(&cp, kind), 0, "{kind} after a refused import");
        }
        let (_, global) = cp.admin("GET", "/v1/policies", None);
        assert_eq!(global, json!({}));
    }

    // --partial: what is valid is imported, the rest is still listed.
    let out = import(&cp, &dir, &["--partial"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.contains("imported: "), "{}", text(&out));
    assert!(stdout.contains("apis/good"), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        stderr.contains("refused: apis/broken-xml/policy.xml:3"),
        "{}",
        text(&out)
    );
    assert_eq!(count(&cp, "apis"), 1);
    assert_eq!(count(&cp, "products"), 0);
}
