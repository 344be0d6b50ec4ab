//! Subscription changes reach a gateway as deltas (`docs/sync-protocol.md`,
//! "Subscription changes"), through the real `edgegw-cp` and `edgegw`:
//! a created subscription's key works after a delta (the gateway logs a
//! delta, not a rebuild) while another subscription's rate-limit window
//! carries on; suspended answers 403 and deleted 401; the backup holds the
//! whole bundle at the new version, so a restart without the control plane
//! serves the new key; a gateway two versions behind (restarted from its
//! backup) and a change of anything but subscriptions get the whole bundle.

use edgegw_tests::{
    cp::{ControlPlane, Store},
    gateway::curl,
    managed::{ManagedNode, admin_ok, register},
    process::TempDir,
};
use serde_json::json;

edgegw_tests::on_both_stores!(subscription_changes_travel_as_deltas);

const DELTA_LOG: &str = "subscriptions from the control plane applied";
const WHOLE_LOG: &str = "configuration from the control plane applied";

fn gold_api(body: &str) -> serde_json::Value {
    json!({
        "name": "gold", "path": "/gold", "backend": "http://127.0.0.1:9",
        "subscription_required": true,
        "policies": {"inbound": [
            {"rate-limit": {"calls": 3, "renewal_period": 300}},
            {"return-response": {"status_code": 200, "body": body}}
        ]}
    })
}

fn subscribe(cp: &ControlPlane, id: &str) -> String {
    let sub = admin_ok(
        cp,
        "POST",
        "/v1/subscriptions",
        json!({"id": id, "scope": "api:gold"}),
    );
    sub["primary_key"].as_str().unwrap().to_string()
}

fn call(node: &ManagedNode, key: &str) -> (u16, String) {
    let url = format!("http://127.0.0.1:{}/gold", node.port);
    curl(&["-H", &format!("Ocp-Apim-Subscription-Key: {key}"), &url])
}

/// Waits until `key` gets `status`.
fn wait_status(node: &ManagedNode, key: &str, status: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while call(node, key).0 != status {
        assert!(
            std::time::Instant::now() < deadline,
            "no {status} for the key: {}",
            node.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn count(node: &ManagedNode, line: &str) -> usize {
    node.log().matches(line).count()
}

fn subscription_changes_travel_as_deltas(store: Store) {
    let tmp = TempDir::new("sdelta");
    let mut cp = ControlPlane::launch(store, &tmp.0, &[]);
    admin_ok(&cp, "PUT", "/v1/apis/gold", gold_api("gold"));
    let first = subscribe(&cp, "s1");
    let token = register(&cp, "gw-d", &["gold"], None);
    let mut node = ManagedNode::of("sdelta-gw", &cp, &token, "");
    node.start();
    wait_status(&node, &first, 200);
    // s1 has used 2 of its 3 calls in the window.
    assert_eq!(call(&node, &first).0, 200);
    let whole = count(&node, WHOLE_LOG);

    // A new subscription: a delta, no rebuild.
    let second = subscribe(&cp, "s2");
    wait_status(&node, &second, 200);
    assert_eq!(count(&node, DELTA_LOG), 1, "{}", node.log());
    assert_eq!(count(&node, WHOLE_LOG), whole, "{}", node.log());
    // s1's window carried on: its third call passes, the fourth is limited.
    assert_eq!(call(&node, &first).0, 200);
    assert_eq!(call(&node, &first).0, 429);

    // Suspended, then deleted: deltas too.
    admin_ok(
        &cp,
        "PUT",
        "/v1/subscriptions/s2",
        json!({"scope": "api:gold", "state": "suspended"}),
    );
    wait_status(&node, &second, 403);
    let (status, answer) = cp.admin("DELETE", "/v1/subscriptions/s2", None);
    assert!(status == 200 || status == 204, "{status} {answer}");
    wait_status(&node, &second, 401);
    assert_eq!(count(&node, DELTA_LOG), 3, "{}", node.log());
    assert_eq!(count(&node, WHOLE_LOG), whole, "{}", node.log());
    // The status shows the control plane's version.
    let (_, desired) = cp.admin("GET", "/v1/gateways/gw-d", None);
    node.wait_status(20, |v| {
        v["control_plane"]["version"] == desired["desired_version"]
    });

    // A gateway two versions behind (stopped meanwhile, then started from
    // its backup) gets the whole bundle.
    node.stop();
    let third = subscribe(&cp, "s3");
    let fourth = subscribe(&cp, "s4");
    node.start();
    wait_status(&node, &fourth, 200);
    assert_eq!(call(&node, &third).0, 200);
    assert_eq!(count(&node, WHOLE_LOG), 1, "{}", node.log());
    assert_eq!(count(&node, DELTA_LOG), 0, "{}", node.log());

    // A change of the API itself: the whole bundle.
    admin_ok(&cp, "PUT", "/v1/apis/gold", gold_api("gold-2"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while call(&node, &fourth).1 != "gold-2" {
        assert!(std::time::Instant::now() < deadline, "{}", node.log());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(count(&node, WHOLE_LOG), 2, "{}", node.log());

    // One more delta, then a cold start from the backup alone.
    let fifth = subscribe(&cp, "s5");
    wait_status(&node, &fifth, 200);
    assert_eq!(count(&node, DELTA_LOG), 1, "{}", node.log());
    node.stop();
    cp.kill();
    node.start();
    assert_eq!(
        call(&node, &fifth),
        (200, "gold-2".to_string()),
        "{}",
        node.log()
    );
    assert_eq!(call(&node, &second).0, 401, "s2 was deleted");
}
