//! The management API of the real `edgegw-cp` over HTTPS: resources reach
//! the bundles gateways fetch, the long-poll wakes on a write, versions move
//! only for gateways whose bundle changed, heartbeats show up in the
//! gateway list and usage is summed across the fleet.

use std::time::{SystemTime, UNIX_EPOCH};

use edgegw_tests::{
    cp::{ControlPlane, Store},
    process::TempDir,
};
use serde_json::{Value, json};

edgegw_tests::on_both_stores!(
    a_write_reaches_a_waiting_gateway_and_only_its_own_changes_move_its_version,
    heartbeats_show_in_the_gateway_list_and_usage_is_summed_over_the_fleet,
    concurrent_writes_are_all_kept
);

fn orders(value: &str) -> Value {
    json!({
        "path": "/orders",
        "backend": "http://127.0.0.1:9000",
        "subscription_required": false,
        "policies": {"inbound": [{"set-header": {"name": "x-tag", "value": value}}]},
        "operations": [{"name": "get-order", "method": "GET", "url": "/{id}"}]
    })
}

fn version_of(cp: &ControlPlane, gateway: &str) -> u64 {
    let (status, body) = cp.admin("GET", &format!("/v1/gateways/{gateway}"), None);
    assert_eq!(status, 200, "{body}");
    body["desired_version"].as_u64().unwrap()
}

fn a_write_reaches_a_waiting_gateway_and_only_its_own_changes_move_its_version(store: Store) {
    let tmp = TempDir::new("cpapi");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    assert_eq!(
        cp.admin("PUT", "/v1/apis/orders", Some(&orders("one"))).0,
        201
    );
    let (status, gw) = cp.admin(
        "POST",
        "/v1/gateways",
        Some(&json!({"name": "edge-1", "apis": ["orders"]})),
    );
    assert_eq!(status, 201, "{gw}");
    let token = gw["token"].as_str().unwrap().to_string();

    // First fetch: the bundle at once, with its version as ETag.
    let first = cp.gateway(&token, "GET", "/v1/gateway/config", &[], None);
    assert_eq!(first.status, 200, "{}", first.body);
    let bundle = first.json();
    let version = bundle["version"].as_u64().unwrap();
    assert_eq!(
        first.header("etag"),
        Some(format!("\"{version}\"").as_str())
    );
    assert_eq!(bundle["apis"][0]["name"], "orders");
    assert_eq!(bundle["apis"][0]["operations"][0]["url"], "/{id}");
    assert_eq!(
        bundle["catalog"]["apis"][0]["policies"]["inbound"][0]["set-header"]["value"],
        "one"
    );

    // Same version: held until `wait` runs out, then 304.
    let etag = format!("If-None-Match: \"{version}\"");
    let unchanged = cp.gateway(&token, "GET", "/v1/gateway/config?wait=1", &[&etag], None);
    assert_eq!(unchanged.status, 304);
    assert!(unchanged.body.is_empty());

    // An API the gateway does not serve changes nothing for it.
    let mut other = orders("x");
    other["path"] = json!("/other");
    assert_eq!(cp.admin("PUT", "/v1/apis/other", Some(&other)).0, 201);
    assert_eq!(version_of(&cp, "edge-1"), version);

    // A waiting long-poll (up to 30 s) answers with the change once it is
    // written, well before its wait runs out.
    std::thread::scope(|s| {
        let waiter =
            s.spawn(|| cp.gateway(&token, "GET", "/v1/gateway/config?wait=30", &[&etag], None));
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert_eq!(
            cp.admin("PUT", "/v1/apis/orders", Some(&orders("two"))).0,
            200
        );
        let changed = waiter.join().unwrap();
        assert_eq!(changed.status, 200, "{}", changed.body);
        let bundle = changed.json();
        let new_version = bundle["version"].as_u64().unwrap();
        assert!(new_version > version);
        assert_eq!(
            bundle["catalog"]["apis"][0]["policies"]["inbound"][0]["set-header"]["value"],
            "two"
        );
        assert_eq!(new_version, version_of(&cp, "edge-1"));
        // Rewriting the same content is no change for the gateway.
        assert_eq!(
            cp.admin("PUT", "/v1/apis/orders", Some(&orders("two"))).0,
            200
        );
        assert_eq!(version_of(&cp, "edge-1"), new_version);
    });

    // Assignment: removing the API empties the bundle; the API list is
    // what the gateway serves.
    let (status, body) = cp.admin(
        "PUT",
        "/v1/gateways/edge-1",
        Some(&json!({"apis": ["other"]})),
    );
    assert_eq!(status, 200, "{body}");
    let now = cp
        .gateway(&token, "GET", "/v1/gateway/config", &[], None)
        .json();
    assert_eq!(now["apis"].as_array().unwrap().len(), 1);
    assert_eq!(now["apis"][0]["name"], "other");
}

fn heartbeats_show_in_the_gateway_list_and_usage_is_summed_over_the_fleet(store: Store) {
    let tmp = TempDir::new("cphb");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    let a = cp.gateway_token("edge-a");
    let b = cp.gateway_token("edge-b");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A week-long window: the test never straddles its end.
    const PERIOD: u64 = 604_800;
    let window = now - now % PERIOD;
    let beat = |token: &str, calls: u64, error: Value| {
        let answer = cp.gateway(
            token,
            "POST",
            "/v1/gateway/heartbeat",
            &[],
            Some(&json!({
                "version": 3, "uptime_secs": 42, "healthy": true,
                "last_sync_error": error,
                "xdp": {"passed": 10, "rate_limited": 2},
                "usage": [
                    {"counter": "api:orders/inbound/0|s:sub-1", "window": window,
                     "period": PERIOD, "calls": calls, "kilobytes": 1},
                    // A window long past is not kept.
                    {"counter": "old", "window": window - 2 * PERIOD, "period": PERIOD, "calls": 5, "kilobytes": 0}
                ]
            })),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()
    };
    let fleet = beat(&a, 7, Value::Null);
    assert_eq!(
        fleet,
        json!({"fleet": [{"counter": "api:orders/inbound/0|s:sub-1", "window": window, "calls": 7, "kilobytes": 1}]})
    );
    beat(&b, 5, json!("bundle rejected: api \"x\": bad"));
    let fleet = beat(&a, 3, Value::Null);
    assert_eq!(fleet["fleet"][0]["calls"], 15);
    assert_eq!(fleet["fleet"][0]["kilobytes"], 3);

    let (status, list) = cp.admin("GET", "/v1/gateways", None);
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let edge_b = &list[1];
    assert_eq!(edge_b["name"], "edge-b");
    assert_eq!(edge_b["heartbeat"]["uptime_secs"], 42);
    assert_eq!(edge_b["heartbeat"]["healthy"], true);
    assert_eq!(edge_b["heartbeat"]["version"], 3);
    assert_eq!(edge_b["heartbeat"]["xdp"]["rate_limited"], 2);
    assert_eq!(
        edge_b["heartbeat"]["last_sync_error"],
        "bundle rejected: api \"x\": bad"
    );
    assert!(
        edge_b["heartbeat"]["last_seen"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(edge_b["desired_version"].as_u64().unwrap() > 0);
    // Each gateway's own share is visible.
    let (_, detail) = cp.admin("GET", "/v1/gateways/edge-a", None);
    assert_eq!(detail["usage"][0]["calls"], 10);
    // A bad heartbeat is refused whole: neither its status nor its usage
    // is kept.
    for (bad, want) in [
        (
            json!({"uptime_secs": 1, "healthy": false, "usage": [
                {"counter": "api:orders/inbound/0|s:sub-1", "window": window, "period": PERIOD, "calls": 100},
                {"counter": "c", "window": window + 1, "period": PERIOD, "calls": 1}]}),
            "window a multiple of it",
        ),
        (
            json!({"uptime_secs": 1, "healthy": false, "uptim": 2}),
            "unknown field `uptim`",
        ),
        (json!({"uptime_secs": 1}), "missing field `healthy`"),
    ] {
        let answer = cp.gateway(&a, "POST", "/v1/gateway/heartbeat", &[], Some(&bad));
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert!(answer.body.contains(want), "{want}: {}", answer.body);
    }
    let (_, detail) = cp.admin("GET", "/v1/gateways/edge-a", None);
    assert_eq!(detail["usage"][0]["calls"], 10);
    assert_eq!(detail["heartbeat"]["healthy"], true);
    // A gateway that never reported has no heartbeat.
    cp.gateway_token("edge-c");
    let (_, c) = cp.admin("GET", "/v1/gateways/edge-c", None);
    assert_eq!(c["heartbeat"], Value::Null);
}

fn concurrent_writes_are_all_kept(store: Store) {
    let tmp = TempDir::new("cpconc");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    let token = cp.gateway_token("edge-1");
    let before = cp
        .gateway(&token, "GET", "/v1/gateway/config", &[], None)
        .json();
    std::thread::scope(|s| {
        for t in 0..6 {
            let cp = &cp;
            s.spawn(move || {
                for i in 0..8 {
                    let (status, body) = cp.admin(
                        "PUT",
                        &format!("/v1/named-values/v-{t}-{i}"),
                        Some(&json!({"value": format!("{t}/{i}")})),
                    );
                    assert_eq!(status, 201, "{body}");
                }
            });
        }
    });
    let (_, values) = cp.admin("GET", "/v1/named-values", None);
    assert_eq!(values.as_array().unwrap().len(), 48);
    // Every one of them is in the gateway's bundle, at a newer version.
    let after = cp
        .gateway(&token, "GET", "/v1/gateway/config", &[], None)
        .json();
    assert_eq!(
        after["catalog"]["named_values"].as_array().unwrap().len(),
        48
    );
    assert!(after["version"].as_u64() > before["version"].as_u64());
}
