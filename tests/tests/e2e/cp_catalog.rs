//! Catalog resources of the real `edgegw-cp`: products, subscriptions with
//! generated keys (shown once, stored hashed, regenerated), named values
//! (secrets never returned), backends, global policies and DoS profiles,
//! all placed into the bundles of the gateways they concern.

use edgegw_tests::{
    apim::hash_key,
    cp::{ControlPlane, Store},
    process::TempDir,
};
use serde_json::{Value, json};

edgegw_tests::on_both_stores!(
    catalog_resources_are_placed_into_the_bundles_of_their_gateways,
    the_store_survives_a_restart_and_a_crash
);

fn ok(cp: &ControlPlane, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = cp.admin(method, path, Some(&body));
    assert!(
        status == 200 || status == 201,
        "{method} {path}: {status} {answer}"
    );
    answer
}

fn catalog_resources_are_placed_into_the_bundles_of_their_gateways(store: Store) {
    let tmp = TempDir::new("cpcat");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    ok(
        &cp,
        "PUT",
        "/v1/backends/orders-be",
        json!({"url": "http://127.0.0.1:9000", "protocol": "http1"}),
    );
    ok(
        &cp,
        "PUT",
        "/v1/backends/unused-be",
        json!({"url": "http://127.0.0.1:9009"}),
    );
    ok(
        &cp,
        "PUT",
        "/v1/named-values/region",
        json!({"value": "eu-west"}),
    );
    ok(
        &cp,
        "PUT",
        "/v1/named-values/backend-token",
        json!({"value": "s3cr3t", "secret": true}),
    );
    ok(
        &cp,
        "PUT",
        "/v1/apis/orders",
        json!({
            "path": "/orders", "backend": "orders-be",
            "subscription_key": {"header": "X-Key", "query": "key"},
            "policies": {"inbound": ["base", {"set-header": {"name": "Authorization", "value": "Bearer {{backend-token}}"}}]},
            "operations": [{"name": "get-order", "method": "GET", "url": "/{id}",
                            "policies": {"inbound": ["base", {"rewrite-uri": {"template": "/v2/orders/{id}"}}]}}]
        }),
    );
    ok(
        &cp,
        "PUT",
        "/v1/apis/billing",
        json!({"path": "/billing", "backend": "http://127.0.0.1:9002"}),
    );
    ok(
        &cp,
        "PUT",
        "/v1/products/starter",
        json!({
            "apis": ["orders", "billing"],
            "policies": {"inbound": [{"quota": {"calls": 10000, "renewal_period": 604800}}, "base"]}
        }),
    );
    ok(
        &cp,
        "PUT",
        "/v1/policies",
        json!({"inbound": [{"set-header": {"name": "x-region", "value": "{{region}}"}}]}),
    );
    ok(
        &cp,
        "PUT",
        "/v1/dos-profiles/strict",
        json!({
            "packets_per_sec": 1000, "packet_burst": 2000, "deny": ["198.51.100.0/24"],
            "port_groups": [{"name": "api", "tcp": [8080], "syn_per_sec": 50}]
        }),
    );

    // Subscriptions: keys shown once, stored as SHA-256.
    let (status, sub) = cp.admin(
        "POST",
        "/v1/subscriptions",
        Some(&json!({"id": "contoso", "scope": "product:starter"})),
    );
    assert_eq!(status, 201, "{sub}");
    let primary = sub["primary_key"].as_str().unwrap().to_string();
    assert!(
        primary.len() == 48 && primary.bytes().all(|b| b.is_ascii_hexdigit()),
        "keys are 48 hex digits: {primary}"
    );
    let secondary = sub["secondary_key"].as_str().unwrap().to_string();
    assert!(primary.len() >= 32 && primary != secondary);
    ok(
        &cp,
        "PUT",
        "/v1/subscriptions/billing-only",
        json!({"scope": "api:billing", "state": "suspended"}),
    );
    let (_, shown) = cp.admin("GET", "/v1/subscriptions/contoso", None);
    assert_eq!(shown, json!({"id": "contoso", "scope": "product:starter"}));
    // A second POST of the same id is a conflict; PUT keeps the keys.
    assert_eq!(
        cp.admin(
            "POST",
            "/v1/subscriptions",
            Some(&json!({"id": "contoso", "scope": "all"}))
        )
        .0,
        409
    );
    let replaced = ok(
        &cp,
        "PUT",
        "/v1/subscriptions/contoso",
        json!({"scope": "product:starter", "state": "active"}),
    );
    assert!(replaced.get("primary_key").is_none(), "{replaced}");

    // Secrets are not returned; plain values are.
    let (_, values) = cp.admin("GET", "/v1/named-values", None);
    assert_eq!(
        values,
        json!([
            {"name": "backend-token", "secret": true},
            {"name": "region", "value": "eu-west"}
        ])
    );
    assert!(!values.to_string().contains("s3cr3t"));

    let (status, gw) = cp.admin(
        "POST",
        "/v1/gateways",
        Some(&json!({"name": "g", "apis": ["orders"], "dos_profile": "strict"})),
    );
    assert_eq!(status, 201, "{gw}");
    let token = gw["token"].as_str().unwrap().to_string();
    let bundle = cp
        .gateway(&token, "GET", "/v1/gateway/config", &[], None)
        .json();
    // Only its API, the backend it uses, its DoS profile.
    assert_eq!(
        bundle["apis"],
        json!([{"name": "orders", "path": "/orders", "backend": "orders-be",
        "operations": [{"name": "get-order", "method": "GET", "url": "/{id}"}]}])
    );
    assert_eq!(
        bundle["backends"],
        json!([{"name": "orders-be", "url": "http://127.0.0.1:9000", "protocol": "http1"}])
    );
    assert_eq!(bundle["dos"]["packets_per_sec"], 1000);
    assert_eq!(bundle["dos"]["port_groups"][0]["tcp"], json!([8080]));
    assert!(bundle["dos"].get("name").is_none());
    let catalog = &bundle["catalog"];
    // The gateway gets the secret value: it substitutes it.
    assert!(catalog["named_values"].to_string().contains("s3cr3t"));
    assert_eq!(
        catalog["policies"]["inbound"][0]["set-header"]["value"],
        "{{region}}"
    );
    assert_eq!(
        catalog["apis"][0]["subscription_key"],
        json!({"header": "X-Key", "query": "key"})
    );
    assert_eq!(catalog["apis"][0]["operations"][0]["name"], "get-order");
    // The product lists only the gateway's APIs; the api:billing
    // subscription is not this gateway's.
    assert_eq!(catalog["products"][0]["apis"], json!(["orders"]));
    let subs = catalog["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["id"], "contoso");
    assert_eq!(subs[0]["primary_key_sha256"], hash_key(&primary));
    assert_eq!(subs[0]["secondary_key_sha256"], hash_key(&secondary));

    // Regenerating a key changes its hash in the bundle and the version.
    let version = bundle["version"].as_u64().unwrap();
    let (status, regen) = cp.admin(
        "POST",
        "/v1/subscriptions/contoso/regenerate?key=primary",
        None,
    );
    assert_eq!(status, 200, "{regen}");
    let new_primary = regen["primary_key"].as_str().unwrap();
    assert_ne!(new_primary, primary);
    let etag = format!("If-None-Match: \"{version}\"");
    let next = cp.gateway(&token, "GET", "/v1/gateway/config?wait=5", &[&etag], None);
    assert_eq!(next.status, 200);
    let next = next.json();
    assert!(next["version"].as_u64().unwrap() > version);
    assert_eq!(
        next["catalog"]["subscriptions"][0]["primary_key_sha256"],
        hash_key(new_primary)
    );
    assert_eq!(
        next["catalog"]["subscriptions"][0]["secondary_key_sha256"],
        hash_key(&secondary)
    );
    let (status, body) = cp.admin(
        "POST",
        "/v1/subscriptions/contoso/regenerate?key=tertiary",
        None,
    );
    assert_eq!(status, 400, "{body}");

    // A suspended state and a DoS profile change reach the bundle too.
    ok(
        &cp,
        "PUT",
        "/v1/subscriptions/contoso",
        json!({"scope": "product:starter", "state": "suspended"}),
    );
    ok(
        &cp,
        "PUT",
        "/v1/dos-profiles/strict",
        json!({"packets_per_sec": 500, "packet_burst": 1000}),
    );
    let last = cp
        .gateway(&token, "GET", "/v1/gateway/config", &[], None)
        .json();
    assert_eq!(last["catalog"]["subscriptions"][0]["state"], "suspended");
    // Typed bundles state every setting of the section, defaults too.
    assert_eq!(last["dos"]["packets_per_sec"], 500);
    assert_eq!(last["dos"]["packet_burst"], 1000);
    assert_eq!(last["dos"]["syn_per_sec"], 100);

    // Lists and global policies read back; deleting the policies empties them.
    assert_eq!(
        cp.admin("GET", "/v1/products", None)
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        cp.admin("GET", "/v1/backends", None)
            .1
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(cp.admin("DELETE", "/v1/policies", None).0, 204);
    assert_eq!(cp.admin("GET", "/v1/policies", None).1, json!({}));
    let last = cp
        .gateway(&token, "GET", "/v1/gateway/config", &[], None)
        .json();
    assert!(last["catalog"].get("policies").is_none());

    // A backend a policy of the gateway's API names by id (APIM XML)
    // joins its bundle; one named only by another gateway's API does not.
    ok(
        &cp,
        "PUT",
        "/v1/backends/mirror-be",
        json!({"url": "http://127.0.0.1:9010"}),
    );
    ok(
        &cp,
        "PUT",
        "/v1/apis/billing",
        json!({"path": "/billing", "backend": "http://127.0.0.1:9002",
               "policies": "<policies><inbound><set-backend-service backend-id=\"unused-be\" /></inbound></policies>"}),
    );
    ok(
        &cp,
        "PUT",
        "/v1/apis/orders",
        json!({
            "path": "/orders", "backend": "orders-be",
            "policies": "<policies><inbound><base /><set-backend-service backend-id=\"mirror-be\" /></inbound></policies>"
        }),
    );
    let last = cp
        .gateway(&token, "GET", "/v1/gateway/config", &[], None)
        .json();
    let names: Vec<&str> = last["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mirror-be", "orders-be"], "{last}");
}

fn the_store_survives_a_restart_and_a_crash(store: Store) {
    let tmp = TempDir::new("cprst");
    let mut cp = ControlPlane::launch(store, &tmp.0, &[]);
    ok(
        &cp,
        "PUT",
        "/v1/apis/orders",
        json!({"path": "/orders", "backend": "http://127.0.0.1:9000"}),
    );
    let token = cp.gateway_token("g");
    ok(&cp, "PUT", "/v1/gateways/g", json!({"apis": ["orders"]}));
    let before = cp
        .gateway(&token, "GET", "/v1/gateway/config", &[], None)
        .json();
    assert_eq!(cp.stop(), Some(0));
    cp.restart();
    // Same bundle, same version, the token still valid.
    let after = cp
        .gateway(&token, "GET", "/v1/gateway/config", &[], None)
        .json();
    assert_eq!(before, after);
    ok(
        &cp,
        "PUT",
        "/v1/apis/billing",
        json!({"path": "/billing", "backend": "http://127.0.0.1:9000"}),
    );
    cp.kill();
    cp.restart();
    assert_eq!(
        cp.admin("GET", "/v1/apis", None)
            .1
            .as_array()
            .unwrap()
            .len(),
        2
    );
}
