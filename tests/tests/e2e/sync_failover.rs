//! A gateway with two control-plane URLs (`urls = [A, B]`, two replicas on
//! one PostgreSQL database): replica A killed with SIGKILL, the gateway
//! moves to B and keeps syncing (a change made on B reaches it), and the
//! fleet usage afterwards equals the calls made: no delta lost, none
//! counted twice (usage batches carry ids the control plane deduplicates).

use std::time::{Duration, Instant};

use edgegw_tests::{
    cp::{ControlPlane, Db},
    managed::{ManagedNode, admin_ok, api_doc, register},
    process::TempDir,
};
use serde_json::json;

/// Calls of the gateway's quota counters that `cp` has counted.
fn counted(cp: &ControlPlane, gateway: &str) -> u64 {
    let (status, body) = cp.admin("GET", &format!("/v1/gateways/{gateway}"), None);
    assert_eq!(status, 200, "{body}");
    body["usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["calls"].as_u64().unwrap())
        .sum()
}

fn wait_counted(cp: &ControlPlane, gateway: &str, want: u64, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = counted(cp, gateway);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "usage counted {got}, calls made {want}, after {secs} s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_gateway_moves_to_the_next_replica_and_usage_is_counted_once() {
    let db = Db::postgres();
    let (dir_a, dir_b) = (TempDir::new("foa"), TempDir::new("fob"));
    let mut a = ControlPlane::on(db.clone(), &dir_a.0, &[]);
    let b = ControlPlane::on(db, &dir_b.0, &[]);
    admin_ok(
        &a,
        "PUT",
        "/v1/apis/hello",
        api_doc("hello", "/hello", "v1", json!([])),
    );
    // A large hourly quota: every call is admitted and counted fleet-wide.
    let quota = json!([{"quota": {"calls": 1_000_000, "renewal_period": 3600}}]);
    admin_ok(
        &a,
        "PUT",
        "/v1/apis/metered",
        api_doc("metered", "/metered", "ok", quota),
    );
    let token = register(&a, "edge", &["hello", "metered"], None);

    // The replicas have their own test CAs: the node trusts both.
    let cas = dir_a.0.join("both-cas.pem");
    let pems = [a.ca_file(), b.ca_file()].map(|p| std::fs::read_to_string(p).unwrap());
    std::fs::write(&cas, pems.concat()).unwrap();
    let mut node = ManagedNode::new("fonode", &a.url(), Some(&cas), &token, "");
    let config = std::fs::read_to_string(&node.config).unwrap();
    let listed = config.replace(
        &format!("url = \"{}\"", a.url()),
        &format!("urls = [\"{}\", \"{}\"]", a.url(), b.url()),
    );
    assert_ne!(listed, config, "the node's config names the control plane");
    std::fs::write(&node.config, listed).unwrap();
    node.start();
    node.wait_body("/hello", "v1", 20);

    let mut calls = 0;
    let mut call = |node: &ManagedNode| {
        let (status, body) = node.get("/metered");
        assert_eq!(status, 200, "{body}");
        calls += 1;
    };
    for _ in 0..30 {
        call(&node);
    }
    wait_counted(&a, "edge", 30, 20);
    // More calls, then A dies mid-stream: their heartbeat may have reached
    // A, or not, or been committed there without an answer.
    for _ in 0..10 {
        call(&node);
    }
    a.kill();
    for _ in 0..10 {
        call(&node);
    }
    wait_counted(&b, "edge", calls, 30);
    // Further heartbeats (nothing new to count) leave the total as it is.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(counted(&b, "edge"), calls, "usage counted twice");
    eprintln!(
        "calls made {calls}, usage counted on replica B {}",
        counted(&b, "edge")
    );

    // Syncing goes on with B: a change made there reaches the gateway.
    admin_ok(
        &b,
        "PUT",
        "/v1/apis/hello",
        api_doc("hello", "/hello", "v2", json!([])),
    );
    node.wait_body("/hello", "v2", 30);
    let status = node.wait_status(20, |v| v["last_heartbeat_error"].is_null());
    assert_eq!(status["control_plane"]["url"], b.url(), "{status}");
    assert!(
        node.log()
            .contains("moving to the next control plane replica"),
        "{}",
        node.log()
    );
    node.stop();
}
