//! The Redis of cluster rate limits set once on the control plane
//! (`PUT /v1/redis`) reaches managed gateways in their bundle: a gateway
//! whose own file has no `[redis]` counts its `scope: cluster` limit in
//! that private redis-server; moving the settings to a second server moves
//! the counting there without a restart; bad settings are refused by the
//! control plane in one line and nothing changes; removing them makes the
//! gateway refuse the bundle (a cluster limit needs a Redis) and keep the
//! last good one.

use std::time::{Duration, Instant};

use edgegw_tests::{
    cp::{ControlPlane, Db, Store},
    managed::{ManagedNode, admin_ok, register},
    process::{TempDir, free_port},
    redis::{PASSWORD, RedisServer},
};
use serde_json::{Value, json};

edgegw_tests::on_both_stores!(the_control_plane_s_redis_reaches_gateways_and_moves_with_it);

/// Sum of every counter `server` holds (the leased calls).
fn counted(server: &RedisServer) -> u64 {
    server.counters().iter().map(|(_, n)| n).sum()
}

/// Calls `/shared/x` on `node` until `server` holds a count or `secs` pass.
fn wait_counted_in(node: &ManagedNode, server: &RedisServer, secs: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (status, _) = node.get("/shared/x");
        assert!(status == 200 || status == 429, "{status}\n{}", node.log());
        let n = counted(server);
        if n > 0 {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "nothing counted in the Redis on port {}:\n{}",
            server.port,
            node.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls `edgegw status --json` until `check` accepts it.
fn wait_status(node: &ManagedNode, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = node.status();
        if check(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{status}\n{}", node.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn redis_doc(server: &RedisServer, password_file: &str) -> Value {
    json!({"url": format!("redis://127.0.0.1:{}", server.port), "password_file": password_file})
}

fn the_control_plane_s_redis_reaches_gateways_and_moves_with_it(store: Store) {
    let tmp = TempDir::new("sync-redis");
    let dir = tmp.0.clone();
    let password = tmp.write("redis-password", PASSWORD);
    let password = password.to_str().unwrap();
    let first = RedisServer::start(&dir, free_port());
    let second_dir = dir.join("second");
    std::fs::create_dir_all(&second_dir).unwrap();
    let second = RedisServer::start(&second_dir, free_port());
    let cp = ControlPlane::on(Db::new(store, &dir), &dir, &[]);
    admin_ok(&cp, "PUT", "/v1/redis", redis_doc(&first, password));
    let (status, shown) = cp.admin("GET", "/v1/redis", None);
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["url"], format!("redis://127.0.0.1:{}", first.port));
    let limit = json!({"rate-limit-by-key": {"calls": 1000, "renewal_period": 60,
        "counter_key": "{header:x-tenant}", "scope": "cluster"}});
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/shared",
        json!({"name": "shared", "path": "/shared", "backend": "http://127.0.0.1:9",
               "subscription_required": false,
               "policies": {"inbound": [limit,
                   {"return-response": {"status_code": 200, "body": "ok"}}]}}),
    );
    let token = register(&cp, "gw-r", &["shared"], None);
    let mut node = ManagedNode::of("gw-r", &cp, &token, "");
    node.start();
    node.wait_body("/shared/x", "ok", 20);
    wait_counted_in(&node, &first, 20);
    let status = node.status();
    assert_eq!(
        status["redis"]["url"],
        format!("redis://127.0.0.1:{}", first.port),
        "{status}"
    );

    // Bad settings: refused whole by the control plane, in one line each.
    for (doc, wanted) in [
        (json!({"url": "http://127.0.0.1:1"}), "redis.url"),
        (
            json!({"url": "redis://127.0.0.1:1", "password_file": "relative/pw"}),
            "absolute path",
        ),
        (
            json!({"url": "redis://127.0.0.1:1", "command_timeout_ms": 0}),
            "command_timeout_ms",
        ),
        (json!({"url": "redis://127.0.0.1:1", "urll": "x"}), "urll"),
    ] {
        let (status, answer) = cp.admin("PUT", "/v1/redis", Some(&doc));
        assert!(status == 400 || status == 422, "{doc}: {status} {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(wanted), "{doc}: {answer}");
        assert!(!message.contains('\n'), "{answer}");
    }
    let (_, shown) = cp.admin("GET", "/v1/redis", None);
    assert_eq!(shown["url"], format!("redis://127.0.0.1:{}", first.port));

    // Moved to the second server: the gateway counts there from its next
    // bundle on, without a restart.
    admin_ok(&cp, "PUT", "/v1/redis", redis_doc(&second, password));
    wait_status(&node, |s| {
        s["redis"]["url"] == format!("redis://127.0.0.1:{}", second.port)
    });
    wait_counted_in(&node, &second, 20);

    // Removed while a cluster limit needs it: the gateway refuses that
    // bundle, says why, and keeps serving the last good one.
    let (status, _) = cp.admin("DELETE", "/v1/redis", None);
    assert_eq!(status, 204);
    let refused = wait_status(&node, |s| s["last_sync"]["ok"] == false);
    let message = refused["last_sync"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("scope: cluster needs a Redis"),
        "{refused}"
    );
    let (status, body) = node.get("/shared/x");
    assert_eq!((status, body.as_str()), (200, "ok"), "{}", node.log());
    let status = node.status();
    assert_eq!(
        status["redis"]["url"],
        format!("redis://127.0.0.1:{}", second.port),
        "the last good Redis stays: {status}"
    );
}
