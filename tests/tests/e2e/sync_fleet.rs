//! The real `edgegw-cp` and two real `edgegw` processes: an API created
//! through the REST API and one imported from an OpenAPI document become
//! reachable on both gateways; a change reaches both; both report their
//! status; the control plane is killed and both keep serving; a gateway
//! restarted while it is down serves from its backup; the control plane
//! comes back and the sync resumes.

use edgegw_tests::{
    backends::TestBackend,
    cp::{ControlPlane, Store},
    gateway::curl,
    managed::{ManagedNode, admin_ok, api_doc, import_pets_with_a_subscription, register},
    process::TempDir,
};
use serde_json::json;

edgegw_tests::on_both_stores!(
    apis_reach_both_gateways_which_keep_serving_without_the_control_plane
);

fn apis_reach_both_gateways_which_keep_serving_without_the_control_plane(store: Store) {
    let tmp = TempDir::new("syncapi");
    let mut cp = ControlPlane::launch(store, &tmp.0, &[]);
    let backend = TestBackend::echo();
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/hello",
        api_doc("hello", "/hello", "v1", json!([])),
    );
    let key = import_pets_with_a_subscription(&cp, &backend.addr.to_string());

    let mut nodes: Vec<ManagedNode> = ["gw-a", "gw-b"]
        .iter()
        .map(|name| {
            let token = register(&cp, name, &["hello", "pets"], None);
            ManagedNode::of(name, &cp, &token, "")
        })
        .collect();
    for node in &mut nodes {
        node.start();
    }
    for node in &nodes {
        node.wait_body("/hello", "v1", 20);
        let url = format!("http://127.0.0.1:{}/petstore/pets/7", node.port);
        let (status, body) = curl(&["-H", &format!("Ocp-Apim-Subscription-Key: {key}"), &url]);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"path\":\"/pets/7\""), "{body}");
        assert_eq!(curl(&[&url]).0, 401, "the imported API needs a key");
        assert_eq!(node.get("/petstore/dogs").0, 404, "no such operation");
    }

    // A change through the REST API reaches both.
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/hello",
        api_doc("hello", "/hello", "v2", json!([])),
    );
    for node in &nodes {
        node.wait_body("/hello", "v2", 20);
    }
    // Both sides show each gateway's status: the control plane from the
    // heartbeats, `edgegw status` from the gateway's side.
    for (name, node) in ["gw-a", "gw-b"].iter().zip(&nodes) {
        let version =
            node.wait_status(20, |v| v["last_sync_error"].is_null())["control_plane"]["version"]
                .clone();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let seen = loop {
            let (status, gw) = cp.admin("GET", &format!("/v1/gateways/{name}"), None);
            assert_eq!(status, 200, "{gw}");
            if gw["heartbeat"]["version"] == version || std::time::Instant::now() > deadline {
                break gw;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        assert_eq!(seen["heartbeat"]["version"], version, "{seen}");
        assert_eq!(seen["desired_version"], version, "{seen}");
        assert_eq!(seen["heartbeat"]["healthy"], true, "{seen}");
        assert!(seen["heartbeat"]["uptime_secs"].is_u64(), "{seen}");
        let text = node.status_text();
        assert!(
            text.contains(&format!("cp version    {version} (from control-plane)")),
            "{text}"
        );
        assert!(text.contains("s ago"), "{text}");
    }

    // The control plane dies: both keep serving what they have.
    cp.kill();
    for node in &nodes {
        let s = node.wait_status(30, |v| {
            v["last_sync_error"]
                .as_str()
                .is_some_and(|e| e.contains("unreachable"))
        });
        assert!(!s["control_plane"]["last_sync_error"].is_null(), "{s}");
        assert_eq!(node.get("/hello"), (200, "v2".to_string()));
        let (status, ready) = node.readyz();
        assert_eq!(status, 200, "{ready}");
        assert!(
            ready.contains("sync: error: fetch: control plane"),
            "{ready}"
        );
    }
    // A gateway restarted meanwhile serves from its backup.
    nodes[0].stop();
    assert!(!nodes[0].backups().is_empty());
    nodes[0].start();
    assert_eq!(nodes[0].get("/hello"), (200, "v2".to_string()));
    assert_eq!(nodes[0].status()["control_plane"]["source"], "backup");

    // The control plane is back: the sync resumes on both.
    cp.restart();
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/hello",
        api_doc("hello", "/hello", "v3", json!([])),
    );
    for node in &nodes {
        // Generous: a gateway may be in its longest backoff (30 s at most).
        node.wait_body("/hello", "v3", 60);
    }
    for node in &mut nodes {
        node.stop();
    }
}
