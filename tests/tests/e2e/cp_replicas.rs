//! Several `edgegw-cp` replicas on one PostgreSQL database (the private
//! server of `edgegw_tests::postgres`): replicas starting together migrate
//! once; a write on replica A wakes a long-poll held by replica B (LISTEN /
//! NOTIFY), for a raw client and for a real gateway; tokens, heartbeats
//! and usage work on any replica; concurrent writes on both are all kept.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use edgegw_tests::{
    cp::{ControlPlane, Db, edgegw_cp},
    managed::{ManagedNode, admin_ok, api_doc, register},
    postgres,
    process::TempDir,
};
use serde_json::json;

/// Two replicas on one new database, each with its own directory.
fn replicas(tag: &str) -> (TempDir, TempDir, ControlPlane, ControlPlane) {
    let db = Db::postgres();
    let (dir_a, dir_b) = (
        TempDir::new(&format!("{tag}a")),
        TempDir::new(&format!("{tag}b")),
    );
    let a = ControlPlane::on(db.clone(), &dir_a.0, &[]);
    let b = ControlPlane::on(db, &dir_b.0, &[]);
    (dir_a, dir_b, a, b)
}

fn version_of(cp: &ControlPlane, gateway: &str) -> u64 {
    let (status, body) = cp.admin("GET", &format!("/v1/gateways/{gateway}"), None);
    assert_eq!(status, 200, "{body}");
    body["desired_version"].as_u64().unwrap()
}

#[test]
fn replicas_starting_together_migrate_once() {
    let db = Db::postgres();
    let Db::Postgres(database) = &db else {
        unreachable!()
    };
    // Four CLIs on a fresh database at once: each opens (and would
    // migrate) the store, then writes an admin token.
    let outputs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let db = db.clone();
                s.spawn(move || {
                    let mut args = vec![
                        "admin-token".to_string(),
                        "create".into(),
                        "--name".into(),
                        format!("t{i}"),
                    ];
                    args.extend(db.args());
                    edgegw_cp(&args)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outputs {
        assert!(out.status.success(), "{out:?}");
    }
    let server = postgres::server();
    assert_eq!(
        server.psql(
            &database.name,
            "SELECT count(*), max(version) FROM edgegw_schema"
        ),
        "1|5"
    );
    assert_eq!(
        server.psql(&database.name, "SELECT count(*) FROM admin_tokens"),
        "4"
    );
}

#[test]
fn a_write_on_one_replica_wakes_a_long_poll_held_by_another() {
    let (_da, _db, a, b) = replicas("rpoll");
    admin_ok(
        &a,
        "PUT",
        "/v1/apis/hello",
        api_doc("hello", "/hello", "v1", json!([])),
    );
    let token = register(&a, "edge-1", &["hello"], None);
    // The token issued by A is good on B (one signing key, in the store).
    let first = b.gateway(&token, "GET", "/v1/gateway/config", &[], None);
    assert_eq!(first.status, 200, "{}", first.body);
    let version = first.json()["version"].as_u64().unwrap();

    // B holds a 30 s long-poll; A writes after 2 s. B answers with the new
    // bundle (200), not at the end of its wait (304): its waiters were
    // woken by A's write.
    let etag = format!("If-None-Match: \"{version}\"");
    let (answer, woken_after_write) = std::thread::scope(|s| {
        let poll = s.spawn(|| {
            let started = Instant::now();
            let answer = b.gateway(&token, "GET", "/v1/gateway/config?wait=30", &[&etag], None);
            (answer, started.elapsed())
        });
        std::thread::sleep(Duration::from_secs(2));
        let written = Instant::now();
        admin_ok(
            &a,
            "PUT",
            "/v1/apis/hello",
            api_doc("hello", "/hello", "v2", json!([])),
        );
        let acknowledged = written.elapsed();
        let (answer, held) = poll.join().unwrap();
        let held_after_write = held.saturating_sub(Duration::from_secs(2));
        eprintln!(
            "replica B answered its long-poll {} ms after the write on A began (A acknowledged in {} ms)",
            held_after_write.as_millis(),
            acknowledged.as_millis()
        );
        (answer, held)
    });
    assert_eq!(answer.status, 200, "{}", answer.body);
    let bundle = answer.json();
    let new_version = bundle["version"].as_u64().unwrap();
    assert!(new_version > version);
    assert_eq!(version_of(&a, "edge-1"), new_version);
    assert!(
        bundle.to_string().contains("v2"),
        "the bundle B answered is A's write: {bundle}"
    );
    assert!(
        woken_after_write >= Duration::from_secs(2),
        "the long-poll was held until the write"
    );
}

#[test]
fn heartbeats_usage_and_admin_tokens_work_on_any_replica() {
    let (_da, _db, a, b) = replicas("rhb");
    let gw1 = a.gateway_token("edge-1");
    let gw2 = b.gateway_token("edge-2");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    const PERIOD: u64 = 604_800;
    let window = now - now % PERIOD;
    let beat = |cp: &ControlPlane, token: &str, calls: u64, batch: Option<&str>| {
        let answer = cp.gateway(
            token,
            "POST",
            "/v1/gateway/heartbeat",
            &[],
            Some(&json!({
                "uptime_secs": 1, "healthy": true, "batch": batch,
                "usage": [{"counter": "q", "window": window, "period": PERIOD, "calls": calls, "kilobytes": 0}]
            })),
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.json()["fleet"][0]["calls"].as_i64().unwrap()
    };
    // Each gateway's heartbeats alternate between the replicas; the fleet
    // totals are the sum whichever replica answers.
    assert_eq!(beat(&a, &gw1, 3, None), 3);
    assert_eq!(beat(&b, &gw1, 4, None), 7);
    assert_eq!(beat(&a, &gw2, 5, None), 12);
    assert_eq!(beat(&b, &gw2, 6, None), 18);
    // A batch A counted but whose answer was lost comes again to B with
    // the same id: counted once. A new batch counts.
    assert_eq!(beat(&a, &gw1, 5, Some("batch-1")), 23);
    assert_eq!(beat(&b, &gw1, 5, Some("batch-1")), 23);
    assert_eq!(beat(&b, &gw1, 1, Some("batch-2")), 24);
    let (status, list) = b.admin("GET", "/v1/gateways/edge-1", None);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["usage"][0]["calls"], 13);
    assert_eq!(list["heartbeat"]["healthy"], true);
    // An admin token created for A's store works on B, and rotating the
    // signing key on B invalidates gateway tokens on A.
    let out = a.cli(&["admin-token", "create", "--name", "ops"]);
    assert!(out.status.success(), "{out:?}");
    let ops = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(
        b.request("GET", "/v1/apis", Some(&ops), &[], None).status,
        200
    );
    assert_eq!(b.admin("POST", "/v1/signing-key/rotate", None).0, 200);
    let refused = a.gateway(&gw1, "GET", "/v1/gateway/config", &[], None);
    assert_eq!(refused.status, 401, "{}", refused.body);
}

#[test]
fn concurrent_writes_on_two_replicas_are_all_kept() {
    let (_da, _db, a, b) = replicas("rconc");
    let writers = 8;
    std::thread::scope(|s| {
        for i in 0..writers {
            let cp = if i % 2 == 0 { &a } else { &b };
            s.spawn(move || {
                let doc = api_doc(&format!("api{i}"), &format!("/p{i}"), "x", json!([]));
                admin_ok(cp, "PUT", &format!("/v1/apis/api{i}"), doc);
            });
        }
    });
    for cp in [&a, &b] {
        let (status, apis) = cp.admin("GET", "/v1/apis", None);
        assert_eq!(status, 200);
        let names: Vec<&str> = apis
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), writers, "{names:?}");
    }
    // One gateway serving all of them: its bundle holds every API.
    let all: Vec<String> = (0..writers).map(|i| format!("api{i}")).collect();
    let token = register(
        &b,
        "edge",
        &all.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
    );
    let bundle = a
        .gateway(&token, "GET", "/v1/gateway/config", &[], None)
        .json();
    assert_eq!(
        bundle["apis"].as_array().unwrap().len(),
        writers,
        "{bundle}"
    );
}

#[test]
fn a_gateway_polling_replica_b_serves_a_change_made_on_replica_a() {
    let (_da, _db, a, b) = replicas("rgw");
    admin_ok(
        &a,
        "PUT",
        "/v1/apis/hello",
        api_doc("hello", "/hello", "v1", json!([])),
    );
    let token = register(&a, "edge-1", &["hello"], None);
    let mut node = ManagedNode::of("rgw", &b, &token, "");
    // Long-polls of 60 s: a change that arrives well before that came by
    // the wake-up, not by the poll ending.
    let config = std::fs::read_to_string(&node.config).unwrap();
    std::fs::write(
        &node.config,
        config.replace("poll_wait_secs = 5", "poll_wait_secs = 60"),
    )
    .unwrap();
    node.start();
    node.wait_body("/hello", "v1", 20);
    // Let the gateway settle into its long-poll on B.
    std::thread::sleep(Duration::from_secs(2));
    let written = Instant::now();
    admin_ok(
        &a,
        "PUT",
        "/v1/apis/hello",
        api_doc("hello", "/hello", "v2", json!([])),
    );
    node.wait_body("/hello", "v2", 30);
    eprintln!(
        "a gateway on replica B served replica A's change {} ms after the write began",
        written.elapsed().as_millis()
    );
    node.stop();
}
