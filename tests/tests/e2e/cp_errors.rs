//! Bad input to the real `edgegw-cp`: malformed JSON, unknown fields,
//! oversized bodies, SQL-ish names and values, writes the gateway's own
//! validation refuses, deletes of referenced resources, a database from a
//! newer version. Each is a clear error that changes nothing.

use edgegw_tests::{
    cp::{ControlPlane, Store, edgegw_cp},
    process::{TempDir, assert_one_line_error},
};
use serde_json::{Value, json};

edgegw_tests::on_both_stores!(
    malformed_unknown_and_oversized_bodies_are_refused_whole,
    sql_ish_names_are_refused_and_sql_ish_values_round_trip,
    an_invalid_write_is_refused_with_the_gateways_message_and_changes_nothing,
    deleting_what_is_still_used_names_the_user,
    bad_names_values_and_fields_are_refused_with_their_place
);

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

fn api(path: &str, header_value: &str) -> Value {
    json!({
        "path": path,
        "backend": "http://127.0.0.1:9000",
        "policies": {"inbound": [{"set-header": {"name": "x-note", "value": header_value}}]},
        "operations": [{"name": "list", "method": "GET", "url": "/"}]
    })
}

fn malformed_unknown_and_oversized_bodies_are_refused_whole(store: Store) {
    let tmp = TempDir::new("cperr");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    let put = |path: &str, body: &[u8]| {
        let a = cp.request("PUT", path, Some(&cp.admin_token), &[], Some(body));
        let json = serde_json::from_str::<Value>(&a.body).unwrap_or(Value::Null);
        (a.status, json)
    };
    let (status, body) = put("/v1/apis/orders", b"{\"path\": \"/orders\",");
    assert_eq!(status, 400);
    assert!(message(&body).contains("invalid JSON body"), "{body}");
    assert_eq!(body["statusCode"], 400);

    let mut doc = api("/orders", "v");
    doc["pathh"] = json!("/typo");
    let (status, body) = put("/v1/apis/orders", doc.to_string().as_bytes());
    assert_eq!(status, 400);
    assert!(message(&body).contains("unknown field `pathh`"), "{body}");
    // Unknown fields in shapes the gateway defines are refused alike,
    // naming their JSON pointer.
    let (status, body) = put(
        "/v1/backends/b1",
        br#"{"url": "http://127.0.0.1:9000", "timeout": 5}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        message(&body).contains("at /timeout: unknown field `timeout`"),
        "{body}"
    );
    let (status, body) = cp.admin(
        "POST",
        "/v1/gateways",
        Some(&json!({"name": "g", "api": ["x"]})),
    );
    assert_eq!(status, 400);
    assert!(message(&body).contains("unknown field `api`"), "{body}");

    // 2 MiB: over the 1 MiB limit.
    let big = format!(
        "{{\"url\": \"http://127.0.0.1:9000\", \"x\": \"{}\"}}",
        "a".repeat(2 << 20)
    );
    let (status, body) = put("/v1/backends/b2", big.as_bytes());
    assert_eq!(status, 413);
    assert!(
        message(&body).contains("larger than 1048576 bytes"),
        "{body}"
    );

    // Nothing of the above was stored.
    for kind in ["apis", "backends"] {
        assert_eq!(cp.admin("GET", &format!("/v1/{kind}"), None).1, json!([]));
    }
    assert_eq!(cp.admin("GET", "/v1/gateways", None).1, json!([]));
    // Unknown routes and methods say what exists.
    let (status, body) = cp.admin("GET", "/v1/widgets", None);
    assert_eq!(status, 404);
    assert!(message(&body).contains("resources are apis"), "{body}");
    let (status, _) = cp.admin("PATCH", "/v1/apis/orders", Some(&json!({})));
    assert_eq!(status, 405);
}

fn sql_ish_names_are_refused_and_sql_ish_values_round_trip(store: Store) {
    let tmp = TempDir::new("cpsql");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    let evil = "x'; DROP TABLE apis;--";
    let mut doc = api("/orders", "v");
    doc["name"] = json!(evil);
    let (status, body) = cp.admin("POST", "/v1/apis", Some(&doc));
    assert_eq!(status, 400);
    assert!(message(&body).contains("is not allowed"), "{body}");
    assert!(message(&body).contains("A-Z a-z 0-9 . _ -"), "{body}");
    // In the path too (percent-encoded by the client).
    let (status, body) = cp.admin(
        "PUT",
        "/v1/products/x%27%3B%20DROP%20TABLE%20apis%3B--",
        Some(&json!({"apis": []})),
    );
    assert_eq!(status, 400);
    assert!(message(&body).contains(evil), "{body}");

    let value = "1'); DELETE FROM resources; SELECT ('\" -- \\ ; DROP TABLE gateways";
    assert_eq!(
        cp.admin("PUT", "/v1/apis/orders", Some(&api("/orders", value)))
            .0,
        201
    );
    let (status, body) = cp.admin("GET", "/v1/apis/orders", None);
    assert_eq!(status, 200);
    assert_eq!(body["policies"]["inbound"][0]["set-header"]["value"], value);
    // And it reaches the gateway unharmed; every table still works.
    let token = {
        let (status, body) = cp.admin(
            "POST",
            "/v1/gateways",
            Some(&json!({"name": "g1", "apis": ["orders"]})),
        );
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    };
    let bundle = cp
        .gateway(&token, "GET", "/v1/gateway/config", &[], None)
        .json();
    assert_eq!(
        bundle["catalog"]["apis"][0]["policies"]["inbound"][0]["set-header"]["value"],
        value
    );
    assert_eq!(
        cp.admin("GET", "/v1/apis", None)
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

fn an_invalid_write_is_refused_with_the_gateways_message_and_changes_nothing(store: Store) {
    let tmp = TempDir::new("cpinv");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    assert_eq!(
        cp.admin("PUT", "/v1/apis/orders", Some(&api("/orders", "good")))
            .0,
        201
    );
    let (status, gw) = cp.admin(
        "POST",
        "/v1/gateways",
        Some(&json!({"name": "g1", "apis": ["orders"]})),
    );
    assert_eq!(status, 201);
    let version = gw["desired_version"].as_u64().unwrap();

    let mut bad = api("/orders", "good");
    bad["policies"] = json!({"inbound": [{"rate-limt": {"calls": 5, "renewal_period": 60}}]});
    let (status, body) = cp.admin("PUT", "/v1/apis/orders", Some(&bad));
    assert_eq!(status, 422, "{body}");
    // The gateway's own list of policies follows; it grows with the gateway.
    let refused = message(&body);
    let known = refused
        .strip_prefix("control plane configuration: catalog: api \"orders\": inbound: unknown policy \"rate-limt\"; known policies: ")
        .unwrap_or_else(|| panic!("{refused}"));
    assert!(
        known.starts_with("rate-limit, rate-limit-by-key, quota, "),
        "{refused}"
    );
    // An unassigned API is validated too (the virtual all-APIs bundle).
    let mut clash = api("/orders", "x");
    clash["name"] = json!("other");
    let (status, body) = cp.admin("POST", "/v1/apis", Some(&clash));
    assert_eq!(status, 422, "{body}");
    assert!(
        message(&body).contains("path \"/orders\" is already used by api \"orders\""),
        "{body}"
    );
    let (status, body) = cp.admin(
        "PUT",
        "/v1/dos-profiles/strict",
        Some(&json!({"packets_per_sec": 0})),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        message(&body).starts_with("dos profile \"strict\": "),
        "{body}"
    );
    // A gateway naming an API that does not exist.
    let (status, body) = cp.admin(
        "PUT",
        "/v1/gateways/g1",
        Some(&json!({"apis": ["orders", "nope"]})),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        message(&body).contains("api \"nope\" does not exist"),
        "{body}"
    );

    // GET shows the old state and the version did not move.
    let (_, now) = cp.admin("GET", "/v1/apis/orders", None);
    assert_eq!(now["policies"]["inbound"][0]["set-header"]["value"], "good");
    assert_eq!(
        cp.admin("GET", "/v1/apis", None)
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(cp.admin("GET", "/v1/dos-profiles", None).1, json!([]));
    let (_, g) = cp.admin("GET", "/v1/gateways/g1", None);
    assert_eq!(g["desired_version"].as_u64().unwrap(), version);
    assert_eq!(g["apis"], json!(["orders"]));
}

fn deleting_what_is_still_used_names_the_user(store: Store) {
    let tmp = TempDir::new("cpref");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    let ok = |method: &str, path: &str, body: Value| {
        let (status, answer) = cp.admin(method, path, Some(&body));
        assert!(status == 200 || status == 201, "{method} {path}: {answer}");
    };
    ok(
        "PUT",
        "/v1/backends/orders-be",
        json!({"url": "http://127.0.0.1:9000"}),
    );
    ok("PUT", "/v1/named-values/tag", json!({"value": "t"}));
    let mut doc = api("/orders", "{{tag}}");
    doc["backend"] = json!("orders-be");
    ok("PUT", "/v1/apis/orders", doc);
    ok("PUT", "/v1/products/starter", json!({"apis": ["orders"]}));
    ok(
        "PUT",
        "/v1/subscriptions/s1",
        json!({"scope": "product:starter"}),
    );
    ok(
        "PUT",
        "/v1/dos-profiles/p",
        json!({"packets_per_sec": 1000, "packet_burst": 2000}),
    );
    ok(
        "POST",
        "/v1/gateways",
        json!({"name": "g", "apis": [], "dos_profile": "p"}),
    );
    for (path, want) in [
        (
            "/v1/backends/orders-be",
            "backend \"orders-be\" is still used by api \"orders\"",
        ),
        (
            "/v1/named-values/tag",
            "named value \"tag\" is still used by api \"orders\"",
        ),
        (
            "/v1/apis/orders",
            "api \"orders\" is still used by product \"starter\"",
        ),
        (
            "/v1/products/starter",
            "product \"starter\" is still used by subscription \"s1\"",
        ),
        (
            "/v1/dos-profiles/p",
            "dos profile \"p\" is still used by gateway \"g\"",
        ),
    ] {
        let (status, body) = cp.admin("DELETE", path, None);
        assert_eq!(status, 409, "{path}: {body}");
        assert!(message(&body).starts_with(want), "{path}: {body}");
    }
    // In dependency order, everything goes.
    for path in [
        "/v1/gateways/g",
        "/v1/dos-profiles/p",
        "/v1/subscriptions/s1",
        "/v1/products/starter",
        "/v1/apis/orders",
        "/v1/named-values/tag",
        "/v1/backends/orders-be",
    ] {
        assert_eq!(cp.admin("DELETE", path, None).0, 204, "{path}");
    }
    let (status, body) = cp.admin("DELETE", "/v1/apis/orders", None);
    assert_eq!(status, 404);
    assert_eq!(message(&body), "api \"orders\" does not exist");
}

#[test]
fn a_database_from_a_newer_version_and_bad_arguments_are_refused_in_one_line() {
    let tmp = TempDir::new("cpdb");
    let db = tmp.0.join("cp.db");
    let out = edgegw_cp(&["admin-token", "create", "--db", db.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    // PRAGMA user_version lives at byte 60 of the header (big-endian).
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[60..64].copy_from_slice(&99u32.to_be_bytes());
    std::fs::write(&db, bytes).unwrap();
    let out = edgegw_cp(&[
        "serve",
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_one_line_error(&out, &["schema version 99", "run the newer edgegw-cp"]);

    let out = edgegw_cp(&[
        "serve",
        "--db",
        tmp.0.join("new.db").to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
    ]);
    assert_one_line_error(&out, &["/nonexistent/cert.pem"]);
    // The port is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = edgegw_cp(&[
        "serve",
        "--db",
        tmp.0.join("new.db").to_str().unwrap(),
        "--listen",
        &addr,
    ]);
    assert_one_line_error(&out, &[&format!("binding {addr}"), "another process"]);
    let out = edgegw_cp(&[
        "serve",
        "--db",
        "/nonexistent/dir/cp.db",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_one_line_error(&out, &["/nonexistent/dir/cp.db"]);
}

/// Names that a URL path cannot carry back (`.`, `..`), named values that
/// are not strings, unknown fields and wrong types in every kind of
/// document: 400 naming the field (JSON pointer) and the fix, nothing
/// written.
fn bad_names_values_and_fields_are_refused_with_their_place(store: Store) {
    let tmp = TempDir::new("cpfields");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    let orders = api("/orders", "v");
    let body = |v: &Value| Some(v.to_string().into_bytes());
    let cases: Vec<(&str, &str, Option<Vec<u8>>, &str)> = vec![
        // Dots in the path (percent-encoded so that curl sends them as they are).
        (
            "PUT",
            "/v1/apis/%2E%2E",
            body(&orders),
            "api name \"..\" is not allowed (a URL path step",
        ),
        (
            "PUT",
            "/v1/apis/%2E",
            body(&orders),
            "api name \".\" is not allowed",
        ),
        (
            "PUT",
            "/v1/named-values/%2E%2E",
            body(&json!({"value": "v"})),
            "named value name \"..\"",
        ),
        (
            "PUT",
            "/v1/gateways/%2E%2E",
            body(&json!({})),
            "gateway name \"..\"",
        ),
        // And in bodies.
        (
            "POST",
            "/v1/apis",
            body(&{
                let mut a = orders.clone();
                a["name"] = json!("..");
                a
            }),
            "api name \"..\"",
        ),
        (
            "POST",
            "/v1/subscriptions",
            body(&json!({"id": ".", "scope": "all"})),
            "subscription name \".\"",
        ),
        (
            "PUT",
            "/v1/apis/a",
            body(&{
                let mut a = orders.clone();
                a["operations"][0]["name"] = json!("..");
                a
            }),
            "at /operations/0/name: operation name \"..\"",
        ),
        (
            "PUT",
            "/v1/products/p",
            body(&json!({"apis": [".."]})),
            "at /apis/0: api name \"..\"",
        ),
        // Named values are strings.
        (
            "PUT",
            "/v1/named-values/n",
            body(&json!({"value": 5})),
            "named value \"n\" at /value: invalid type: integer `5`, expected a string; give the field a value of the expected type",
        ),
        (
            "PUT",
            "/v1/named-values/n",
            body(&json!({"value": {"a": 1}})),
            "at /value: invalid type: map",
        ),
        // Unknown fields and wrong types, in every kind.
        (
            "PUT",
            "/v1/named-values/n",
            body(&json!({"value": "v", "secrett": true})),
            "at /secrett: unknown field `secrett`",
        ),
        (
            "PUT",
            "/v1/products/p",
            body(&json!({"apis": [], "subscription_requird": false})),
            "at /subscription_requird: unknown field",
        ),
        (
            "PUT",
            "/v1/products/p",
            body(&json!({"apis": "orders"})),
            "at /apis: invalid type: string",
        ),
        (
            "PUT",
            "/v1/policies",
            body(&json!({"inbund": []})),
            "at /inbund: unknown field `inbund`",
        ),
        (
            "PUT",
            "/v1/policies",
            body(&json!({"inbound": {"a": 1}})),
            "at /inbound: invalid type: map",
        ),
        (
            "PUT",
            "/v1/dos-profiles/d",
            body(&json!({"bogus": 1})),
            "dos profile \"d\" at /bogus: unknown field `bogus`",
        ),
        (
            "PUT",
            "/v1/apis/a",
            body(&{
                let mut a = orders.clone();
                a["operations"][0]["verb"] = json!("GET");
                a
            }),
            "at /operations/0/verb: unknown field `verb`",
        ),
        (
            "PUT",
            "/v1/subscriptions/s",
            body(&json!({"scope": "all", "key": "k"})),
            "at /key: unknown field `key`",
        ),
        (
            "PUT",
            "/v1/gateways/g",
            body(&json!({"apis": "orders"})),
            "gateway \"g\" at /apis: invalid type: string",
        ),
        (
            "POST",
            "/v1/gateways/g/token",
            body(&json!({"ttl": 5})),
            "token request at /ttl (line 1 column 6): unknown field `ttl`",
        ),
        // Malformed JSON: line and column.
        (
            "PUT",
            "/v1/backends/b",
            Some(b"{\"url\":\n  \"http://x\",,}".to_vec()),
            "backend: invalid JSON body at line 2 column 14: ",
        ),
    ];
    for (method, path, body, want) in cases {
        let a = cp.request(method, path, Some(&cp.admin_token), &[], body.as_deref());
        let json: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
        assert_eq!(a.status, 400, "{method} {path}: {}", a.body);
        let message = message(&json);
        assert!(
            message.contains(want),
            "{method} {path}: want {want:?}: {message}"
        );
        assert!(!message.contains('\n'), "{message}");
    }
    for kind in [
        "apis",
        "products",
        "named-values",
        "subscriptions",
        "backends",
        "dos-profiles",
    ] {
        assert_eq!(
            cp.admin("GET", &format!("/v1/{kind}"), None).1,
            json!([]),
            "{kind}"
        );
    }
    assert_eq!(cp.admin("GET", "/v1/gateways", None).1, json!([]));
    assert_eq!(cp.admin("GET", "/v1/policies", None).1, json!({}));
    // A string value is accepted.
    assert_eq!(
        cp.admin("PUT", "/v1/named-values/n", Some(&json!({"value": "5"})))
            .0,
        201
    );
}
