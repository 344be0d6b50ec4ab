//! What goes wrong between a gateway and its control plane, with the real
//! `edgegw-cp` and a real `edgegw`: a bundle the node cannot use is
//! rejected whole and reported (heartbeat, `edgegw status`, `/readyz`)
//! while the last good configuration serves; an expired token is logged
//! loudly (not once per retry) and shown, service continues, and a new
//! token in the token file is picked up without a restart.

use std::time::{Duration, Instant};

use edgegw_tests::{
    cp::{ControlPlane, Store},
    managed::{ManagedNode, admin_ok, api_doc, register},
    process::TempDir,
};
use serde_json::json;

edgegw_tests::on_both_stores!(
    a_bundle_the_node_cannot_use_is_rejected_whole_and_reported,
    an_expired_token_is_reported_loudly_while_service_continues
);

fn wait_readyz(node: &ManagedNode, needle: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, body) = node.readyz();
        assert_eq!(status, 200, "{body}");
        if body.contains(needle) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} not in /readyz: {body}\n{}",
            node.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn a_bundle_the_node_cannot_use_is_rejected_whole_and_reported(store: Store) {
    let tmp = TempDir::new("syncbad");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/hello",
        api_doc("hello", "/hello", "v1", json!([])),
    );
    let token = register(&cp, "gw-a", &["hello"], None);
    let mut node = ManagedNode::of("gw-a", &cp, &token, "");
    node.start();
    node.wait_body("/hello", "v1", 20);
    let good = node.status()["control_plane"]["version"].clone();

    // Valid for the control plane, but this node has no such CA file: the
    // gateway cannot build the backend's TLS client.
    admin_ok(
        &cp,
        "PUT",
        "/v1/backends/secure",
        json!({"name": "secure", "url": "https://127.0.0.1:9", "ca_file": "/nonexistent/sync-test-ca.pem"}),
    );
    let mut api = api_doc("hello", "/hello", "v2", json!([]));
    api["backend"] = json!("secure");
    admin_ok(&cp, "PUT", "/v1/apis/hello", api);

    let s = node.wait_status(30, |v| !v["last_sync_error"].is_null());
    let error = s["control_plane"]["last_sync_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("rejected") && error.contains("/nonexistent/sync-test-ca.pem"),
        "{s}"
    );
    assert_eq!(
        s["control_plane"]["version"], good,
        "the last good version stays"
    );
    assert_eq!(
        node.get("/hello"),
        (200, "v1".to_string()),
        "nothing applied half-way"
    );
    assert!(node.log().contains("keeps running"), "{}", node.log());
    wait_readyz(&node, "sync: error: version", 10);
    // The heartbeat carries the error to the control plane.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, gw) = cp.admin("GET", "/v1/gateways/gw-a", None);
        let reported = gw["heartbeat"]["last_sync_error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if reported.contains("/nonexistent/sync-test-ca.pem") {
            assert_eq!(gw["heartbeat"]["healthy"], false, "{gw}");
            assert_eq!(gw["heartbeat"]["version"], good, "{gw}");
            break;
        }
        assert!(Instant::now() < deadline, "{gw}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Fixed on the control plane: applied, the error is gone.
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/hello",
        api_doc("hello", "/hello", "v3", json!([])),
    );
    node.wait_body("/hello", "v3", 20);
    node.wait_status(10, |v| v["last_sync_error"].is_null());
    wait_readyz(&node, "sync: ok", 10);

    // SIGHUP re-reads the node's file and puts the current bundle on top:
    // the APIs stay (the file has none of its own).
    node.daemon
        .as_ref()
        .unwrap()
        .signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !node.log().contains("configuration reloaded") {
        assert!(Instant::now() < deadline, "{}", node.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(node.get("/hello"), (200, "v3".to_string()));
    node.stop();
}

fn an_expired_token_is_reported_loudly_while_service_continues(store: Store) {
    let tmp = TempDir::new("synctok");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/hello",
        api_doc("hello", "/hello", "v1", json!([])),
    );
    register(&cp, "gw-a", &["hello"], None);
    let short = admin_ok(
        &cp,
        "POST",
        "/v1/gateways/gw-a/token",
        json!({"ttl_secs": 6}),
    );
    let mut node = ManagedNode::of("gw-a", &cp, short["token"].as_str().unwrap(), "");
    node.start();
    node.wait_body("/hello", "v1", 20);

    let ready = wait_readyz(&node, "sync: token rejected", 60);
    assert!(ready.contains("expired"), "{ready}");
    assert_eq!(
        node.get("/hello"),
        (200, "v1".to_string()),
        "service continues"
    );
    let s = node.status();
    assert!(
        s["control_plane"]["token_error"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{s}"
    );
    assert!(
        node.status_text()
            .contains("sync error    control plane refused the token")
    );
    // Retried often, logged once a minute: one error line so far.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !node.log().contains("refused the token") {
        assert!(Instant::now() < deadline, "{}", node.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(5));
    let log = node.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("refused the token"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("ERROR") && lines[0].contains("still serving"),
        "{}",
        lines[0]
    );

    // A new token in the file is used without a restart.
    let fresh = cp.gateway_token("gw-a");
    std::fs::write(&node.token_file, fresh).unwrap();
    wait_readyz(&node, "sync: ok", 60);
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/hello",
        api_doc("hello", "/hello", "v2", json!([])),
    );
    node.wait_body("/hello", "v2", 20);
    node.stop();
}
