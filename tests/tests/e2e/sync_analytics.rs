//! Request analytics of the fleet: two real gateways behind one real
//! control plane, a bounded load with known counts per API, operation,
//! status and subscription; `GET /v1/analytics` answers exactly those
//! counts, also when the control plane was down for several periods in
//! the middle of the load (the gateways buffer on disk, one of them is
//! restarted meanwhile) and comes back. Then the bad cases: a batch the
//! control plane refuses is counted and not sent again; a full outbox
//! drops (and counts) its oldest batches while the gateway keeps serving;
//! `edgegw analytics` shows the node's own period in progress.

use std::time::{Duration, Instant};

use edgegw_tests::{
    backends::TestBackend,
    cp::{ControlPlane, Db, Store},
    gateway::curl,
    managed::{ManagedNode, admin_ok, api_doc, import_pets_with_a_subscription, register},
    netns::{NetNs, Veth},
    pins::PinGuard,
    process::{TempDir, edgegw},
};
use serde_json::{Value, json};

edgegw_tests::on_both_stores!(
    exact_counts_across_two_gateways_and_a_control_plane_outage,
    xdp_drops_reach_the_control_plane_per_gateway_and_reason
);

/// `n` GETs of `url` over one curl (one connection); every status.
fn calls(url: &str, n: usize, headers: &[&str]) -> Vec<u16> {
    let mut args: Vec<String> = vec!["-s".into(), "-w".into(), "%{http_code}\\n".into()];
    for h in headers {
        args.extend(["-H".into(), h.to_string()]);
    }
    for _ in 0..n {
        args.extend(["-o".into(), "/dev/null".into(), url.into()]);
    }
    let out = std::process::Command::new("curl")
        .args(&args)
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap_or(0))
        .collect()
}

/// One round of the known load on a gateway: (key calls, keyless calls,
/// unknown operations, hello calls, failing backend calls).
fn load(port: u16, key: &str, n: [usize; 5]) {
    let base = format!("http://127.0.0.1:{port}");
    let key = format!("Ocp-Apim-Subscription-Key: {key}");
    let pet = format!("{base}/petstore/pets/7");
    assert_eq!(calls(&pet, n[0], &[&key]), vec![200; n[0]]);
    assert_eq!(calls(&pet, n[1], &[]), vec![401; n[1]]);
    assert_eq!(
        calls(&format!("{base}/petstore/dogs"), n[2], &[]),
        vec![404; n[2]]
    );
    assert_eq!(calls(&format!("{base}/hello"), n[3], &[]), vec![200; n[3]]);
    assert_eq!(calls(&format!("{base}/down"), n[4], &[]), vec![502; n[4]]);
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The next multiple of `period` seconds after now, Unix seconds.
fn next_period_start(period: u64) -> u64 {
    (now_millis() / 1000 / period + 1) * period
}

/// Sleeps until a little after Unix second `t`.
fn sleep_until(t: u64) {
    let target = t * 1000 + 200;
    std::thread::sleep(Duration::from_millis(target.saturating_sub(now_millis())));
}

fn query(cp: &ControlPlane, params: &str) -> Value {
    let (status, v) = cp.admin("GET", &format!("/v1/analytics?{params}"), None);
    assert_eq!(status, 200, "{v}");
    v
}

/// The rows of a grouped query as (group, requests).
fn totals(v: &Value, keys: &[&str]) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key: Vec<String> = keys
                .iter()
                .map(|k| r[*k].as_str().unwrap_or("-").to_string())
                .collect();
            (key.join("/"), r["requests"].as_u64().unwrap())
        })
        .collect();
    out.sort();
    out
}

fn exact_counts_across_two_gateways_and_a_control_plane_outage(store: Store) {
    let tmp = TempDir::new("syncan");
    let mut cp = ControlPlane::launch(store, &tmp.0, &[]);
    let backend = TestBackend::echo();
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/hello",
        api_doc("hello", "/hello", "hi", json!([])),
    );
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/down",
        json!({"name": "down", "path": "/down", "backend": "http://127.0.0.1:9",
               "subscription_required": false}),
    );
    let key = import_pets_with_a_subscription(&cp, &backend.addr.to_string());

    let mut nodes: Vec<ManagedNode> = ["gw-a", "gw-b"]
        .iter()
        .map(|name| {
            let token = register(&cp, name, &["hello", "pets", "down"], None);
            ManagedNode::of(name, &cp, &token, "[analytics]\nperiod_secs = 2\n")
        })
        .collect();
    for node in &mut nodes {
        node.start();
        node.wait_body("/hello", "hi", 20);
    }
    // wait_body's calls are counted too, in periods before `from`: the
    // load starts in the next period but one.
    let from = next_period_start(2) + 2;
    sleep_until(from);
    let a = [10, 4, 2, 5, 2];
    let b = [7, 3, 1, 6, 2];
    load(nodes[0].port, &key, a);
    load(nodes[1].port, &key, b);

    // The control plane goes away for more than two periods while the
    // load goes on; gw-b is restarted meanwhile (its outbox and its
    // period in progress survive on disk).
    cp.stop();
    load(nodes[0].port, &key, a);
    load(nodes[1].port, &key, b);
    nodes[1].stop();
    nodes[1].start();
    let waiting = |s: &Value| {
        s["analytics"]["outbox_batches"].as_u64().unwrap_or(0) > 0
            && s["analytics"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("stay in the outbox"))
    };
    for node in &nodes {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut status = node.status();
        while !waiting(&status) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            status = node.status();
        }
        assert!(
            status["analytics"]["outbox_batches"].as_u64().unwrap() > 0,
            "batches wait on disk while the control plane is down: {status}"
        );
        assert!(
            status["analytics"]["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("stay in the outbox")),
            "{status}"
        );
    }
    std::thread::sleep(Duration::from_secs(5));
    cp.restart();

    // Everything arrives once: (key, keyless, no operation, hello, down)
    // summed over both gateways and both rounds.
    let sum = |i: usize| 2 * (a[i] + b[i]) as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    let by_operation = loop {
        let v = query(&cp, &format!("group_by=operation&from={from}&to=now"));
        let t = totals(&v, &["api", "operation"]);
        let pets: u64 = t
            .iter()
            .filter(|(k, _)| k == "pets/get-pet")
            .map(|(_, n)| n)
            .sum();
        let drained = nodes
            .iter()
            .all(|n| n.status()["analytics"]["outbox_batches"] == 0);
        if (pets == sum(0) + sum(1) && drained) || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let t = totals(&by_operation, &["api", "operation"]);
    assert_eq!(
        t,
        vec![
            ("down/-".to_string(), sum(4)),
            ("hello/-".to_string(), sum(3)),
            ("pets/-".to_string(), sum(2)),
            ("pets/get-pet".to_string(), sum(0) + sum(1)),
        ],
        "{by_operation}"
    );
    let row = |v: &Value, api: &str, op: Option<&str>| -> Value {
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["api"] == api && r["operation"] == json!(op))
            .cloned()
            .unwrap()
    };
    let pets = row(&by_operation, "pets", Some("get-pet"));
    assert_eq!(pets["status"]["2xx"], sum(0), "{pets}");
    assert_eq!(pets["status"]["4xx"], sum(1), "{pets}");
    assert_eq!(pets["errors"], 0, "{pets}");
    assert!(pets["bytes_out"].as_u64().unwrap() > 0, "{pets}");
    let p50 = pets["p50_ms"].as_u64().unwrap();
    let p99 = pets["p99_ms"].as_u64().unwrap();
    assert!(
        (1..=1000).contains(&p50) && p50 <= p99 && p99 <= 5000,
        "{pets}"
    );
    let down = row(&by_operation, "down", None);
    assert_eq!(down["status"]["5xx"], sum(4), "{down}");
    assert_eq!(down["errors"], sum(4), "{down}");
    assert_eq!(down["error_rate"], 1.0, "{down}");
    assert_eq!(row(&by_operation, "pets", None)["status"]["4xx"], sum(2));

    // By gateway: each one's own count.
    let by_gateway = query(&cp, &format!("group_by=gateway&from={from}&to=now"));
    let own = |n: [usize; 5]| 2 * n.iter().sum::<usize>() as u64;
    assert_eq!(
        totals(&by_gateway, &["gateway"]),
        vec![("gw-a".to_string(), own(a)), ("gw-b".to_string(), own(b))],
        "{by_gateway}"
    );
    // By subscription: the calls with the key, and the rest without one.
    let by_sub = query(&cp, &format!("group_by=subscription&from={from}&to=now"));
    let s = totals(&by_sub, &["subscription"]);
    assert_eq!(
        s,
        vec![
            ("-".to_string(), own(a) + own(b) - sum(0)),
            ("sub-1".to_string(), sum(0)),
        ],
        "{by_sub}"
    );
    // Steps split the range; their sum is the whole.
    let stepped = query(&cp, &format!("group_by=api&from={from}&to=now&step=2"));
    let stepped_total: u64 = stepped["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(stepped_total, own(a) + own(b), "{stepped}");

    for node in &nodes {
        let a = &node.status()["analytics"];
        assert_eq!(a["outbox_batches"], 0, "{a}");
        assert_eq!(a["refused_batches"], 0, "{a}");
        assert_eq!(a["dropped_batches"], 0, "{a}");
        assert!(a["sent_batches"].as_u64().unwrap() > 0, "{a}");
    }
    // Bad queries name the parameter and the fix.
    let (status, v) = cp.admin("GET", "/v1/analytics?group_by=colour", None);
    assert_eq!(status, 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("group_by=\"colour\""),
        "{v}"
    );
    let (status, v) = cp.admin("GET", "/v1/analytics?from=yesterday", None);
    assert_eq!(status, 400);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("from=\"yesterday\""),
        "{v}"
    );
    let (status, _) = cp.admin("GET", "/v1/analytics?from=now&to=-1h", None);
    assert_eq!(status, 400);
    for node in &mut nodes {
        node.stop();
    }
}

#[test]
fn refused_batches_and_a_full_outbox_are_counted_while_the_gateway_serves() {
    let tmp = TempDir::new("syncanbad");
    let mut cp = ControlPlane::launch(Store::Sqlite, &tmp.0, &[]);
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/hello",
        api_doc("hello", "/hello", "hi", json!([])),
    );
    let keys: Vec<String> = (0..8)
        .map(|i| {
            let sub = admin_ok(
                &cp,
                "POST",
                "/v1/subscriptions",
                json!({"id": format!("subscription-number-{i}"), "scope": "api:hello"}),
            );
            sub["primary_key"].as_str().unwrap().to_string()
        })
        .collect();
    let token = register(&cp, "gw-bad", &["hello"], None);
    let mut node = ManagedNode::of(
        "gw-bad",
        &cp,
        &token,
        "[analytics]\nperiod_secs = 1\noutbox_max_bytes = 4096\n",
    );
    // A batch the control plane refuses (its start is not a multiple of
    // its period): a corrupt file, say.
    let outbox = node.dir.0.join("analytics");
    std::fs::create_dir_all(&outbox).unwrap();
    std::fs::write(
        outbox.join("000000000007-bogus.json"),
        r#"{"id": "bogus", "start": 7, "period_secs": 60}"#,
    )
    .unwrap();
    node.start();
    node.wait_body("/hello", "hi", 20);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut a = node.status()["analytics"].clone();
    while a["refused_batches"] != 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        a = node.status()["analytics"].clone();
    }
    assert_eq!(a["refused_batches"], 1, "{a}");
    assert!(
        a["last_error"].as_str().is_some_and(
            |e| e.contains("refused analytics batch") && e.contains("multiple of period_secs")
        ),
        "{a}"
    );
    assert!(
        !outbox.join("000000000007-bogus.json").exists(),
        "not sent again"
    );

    // `edgegw analytics`: the node's own period in progress.
    let runtime = node.runtime_dir.to_str().unwrap().to_string();
    let mut seen = false;
    for _ in 0..20 {
        calls(&format!("http://127.0.0.1:{}/hello", node.port), 3, &[]);
        let out = edgegw(&["analytics", "--json", "--runtime-dir", &runtime]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["period_secs"], 1, "{v}");
        if v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["api"] == "hello" && r["requests"].as_u64().unwrap() >= 1)
        {
            seen = true;
            break;
        }
    }
    assert!(seen, "edgegw analytics shows the period in progress");
    let out = edgegw(&["analytics", "--runtime-dir", &runtime]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("REQUESTS") && text.contains("refused 1"),
        "{text}"
    );

    // The control plane goes away; eight subscriptions a period make
    // batches of about 3 KB, so the 4 KB outbox overflows within seconds.
    // The gateway answers every call all along.
    cp.stop();
    let url = format!("http://127.0.0.1:{}/hello", node.port);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut a = node.status()["analytics"].clone();
    while a["dropped_batches"].as_u64().unwrap_or(0) < 2 && Instant::now() < deadline {
        for k in &keys {
            let header = format!("Ocp-Apim-Subscription-Key: {k}");
            assert_eq!(calls(&url, 2, &[&header]), vec![200, 200]);
        }
        std::thread::sleep(Duration::from_millis(300));
        a = node.status()["analytics"].clone();
    }
    assert!(a["dropped_batches"].as_u64().unwrap() >= 2, "{a}");
    assert!(a["outbox_bytes"].as_u64().unwrap() <= 4096, "{a}");
    let text = node.status_text();
    assert!(text.contains("dropped (outbox full)"), "{text}");
    let (status, metrics) = curl(&[&format!("http://127.0.0.1:{}/metrics", node.admin_port)]);
    assert_eq!(status, 200);
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("edgegw_analytics_batches_dropped_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(dropped >= 2, "{metrics}");
    assert!(
        node.log().contains("analytics outbox full"),
        "{}",
        node.log()
    );

    // Back: what the outbox kept is sent, and it empties.
    cp.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut a = node.status()["analytics"].clone();
    while a["outbox_batches"] != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        a = node.status()["analytics"].clone();
    }
    assert_eq!(a["outbox_batches"], 0, "{a}");
    let (status, v) = cp.admin("GET", "/v1/analytics?group_by=subscription&from=-1h", None);
    assert_eq!(status, 200);
    assert!(v["rows"].as_array().unwrap().len() >= 8, "{v}");
    node.stop();
}

/// Packets XDP dropped on `iface` for new connections over the limit
/// (`edgegw drops`).
fn syn_limited(iface: &str) -> u64 {
    let out = edgegw(&["drops", "--iface", iface, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["reasons"]["syn_rate_limited"]["packets"]
        .as_u64()
        .unwrap()
}

/// The gateway (its control plane too) in one namespace with XDP on a
/// veth, a client in another allowed one new connection a second: a
/// bounded flood of connection attempts is dropped as `syn_rate_limited`,
/// and `/v1/analytics/drops` shows exactly the packets `edgegw drops`
/// counted, for that gateway and reason, with the client as the top
/// dropped source.
fn xdp_drops_reach_the_control_plane_per_gateway_and_reason(store: Store) {
    let gw = NetNs::new("agw");
    let client = NetNs::new("acl");
    let veth = Veth::new(&gw, &client);
    let _pins = PinGuard::new(&veth.a);
    let tmp = TempDir::new("syncandrops");
    let (dir, iface, gw_ip) = (tmp.0.clone(), veth.a.clone(), veth.a_ip.clone());
    let client_ip = veth.b_ip.clone();
    gw.run_in(move || {
        let cp = ControlPlane::on(Db::new(store, &dir).over_socket(), &dir, &[]);
        let profile = json!({"packets_per_sec": 100000, "packet_burst": 100000,
                             "syn_per_sec": 1, "syn_burst": 1});
        admin_ok(&cp, "PUT", "/v1/dos-profiles/strict", profile);
        admin_ok(
            &cp,
            "PUT",
            "/v1/apis/hello",
            api_doc("hello", "/hello", "hi", json!([])),
        );
        let token = register(&cp, "gw-x", &["hello"], Some("strict"));
        let extra = format!(
            "[xdp]\niface = \"{iface}\"\nmode = \"native\"\ndetach_on_exit = true\n[analytics]\nperiod_secs = 1\n"
        );
        let mut node = ManagedNode::of("gw-x", &cp, &token, &extra);
        node.start();
        node.wait_body("/hello", "hi", 20);
        // Twenty connection attempts of up to a second each: most of their
        // SYNs are over the limit.
        for _ in 0..20 {
            let _ = client
                .command(&["curl", "-sS", "--connect-timeout", "1", &format!("http://{gw_ip}:9/")])
                .output()
                .unwrap();
        }
        let dropped = syn_limited(&iface);
        assert!(dropped >= 5, "the flood was dropped: {dropped}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let answer = loop {
            let (status, v) = cp.admin("GET", "/v1/analytics/drops?from=-1h", None);
            assert_eq!(status, 200, "{v}");
            let counted: u64 = v["drops"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["gateway"] == "gw-x" && d["reason"] == "syn_rate_limited")
                .map(|d| d["packets"].as_u64().unwrap())
                .sum();
            if counted == dropped || Instant::now() > deadline {
                break v;
            }
            std::thread::sleep(Duration::from_millis(300));
        };
        assert_eq!(
            answer["drops"],
            json!([{"gateway": "gw-x", "reason": "syn_rate_limited", "packets": dropped}]),
            "{answer}\n{}",
            node.log()
        );
        assert_eq!(
            answer["top_sources"],
            json!([{"gateway": "gw-x", "source": client_ip, "packets": dropped}]),
            "{answer}"
        );
        node.stop();
    });
}

/// `[analytics] enabled = false`: two gateways under the same load, one
/// with analytics on as the witness that batches do flow; the one turned
/// off sends none (while its heartbeats go on), keeps no outbox, and says
/// so through `/analytics` and `edgegw analytics`.
#[test]
fn analytics_turned_off_send_no_batches() {
    let tmp = TempDir::new("syncanoff");
    let cp = ControlPlane::launch(Store::Sqlite, &tmp.0, &[]);
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/hello",
        api_doc("hello", "/hello", "hi", json!([])),
    );
    let mut on = ManagedNode::of(
        "gw-on",
        &cp,
        &register(&cp, "gw-on", &["hello"], None),
        "[analytics]\nperiod_secs = 1\n",
    );
    let mut off = ManagedNode::of(
        "gw-off",
        &cp,
        &register(&cp, "gw-off", &["hello"], None),
        "[analytics]\nenabled = false\nperiod_secs = 1\n",
    );
    for node in [&mut on, &mut off] {
        node.start();
        node.wait_body("/hello", "hi", 20);
    }
    let by_gateway = || {
        totals(
            &query(&cp, "group_by=gateway&from=-1h&to=now"),
            &["gateway"],
        )
    };
    // Several periods of load on both; the witness's batches arrive.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = by_gateway();
    while !seen.iter().any(|(g, n)| g == "gw-on" && *n >= 40) && Instant::now() < deadline {
        for node in [&on, &off] {
            let url = format!("http://127.0.0.1:{}/hello", node.port);
            assert_eq!(calls(&url, 10, &[]), vec![200; 10]);
        }
        std::thread::sleep(Duration::from_millis(500));
        seen = by_gateway();
    }
    assert!(
        seen.iter().any(|(g, n)| g == "gw-on" && *n >= 40),
        "the witness's batches arrive: {seen:?}\n{}",
        on.log()
    );
    // Periods of the switched-off gateway would have been sent by now.
    std::thread::sleep(Duration::from_secs(3));
    let seen = by_gateway();
    assert!(
        seen.iter().all(|(g, _)| g != "gw-off"),
        "no batch from the gateway with analytics off: {seen:?}"
    );
    // Its heartbeats still reach the control plane.
    let (status, gw) = cp.admin("GET", "/v1/gateways/gw-off", None);
    assert_eq!(status, 200, "{gw}");
    assert!(!gw["heartbeat"]["last_seen"].is_null(), "{gw}");

    let s = off.status();
    assert!(s["analytics"].is_null(), "{s}");
    assert!(
        !off.dir.0.join("analytics").exists(),
        "no outbox when analytics are off"
    );
    assert!(on.dir.0.join("analytics").exists(), "the witness has one");
    let (status, body) = curl(&[&format!("http://127.0.0.1:{}/analytics", off.admin_port)]);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("[analytics] enabled = false"), "{body}");
    let runtime = off.runtime_dir.to_str().unwrap().to_string();
    let out = edgegw(&["analytics", "--runtime-dir", &runtime]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("request analytics are off"), "{err}");
    let (_, metrics) = curl(&[&format!("http://127.0.0.1:{}/metrics", off.admin_port)]);
    assert!(!metrics.contains("edgegw_analytics_"), "{metrics}");
    // The request metrics are still recorded.
    assert!(
        metrics.contains("edgegw_requests_total{api=\"hello\""),
        "{metrics}"
    );
    on.stop();
    off.stop();
}
