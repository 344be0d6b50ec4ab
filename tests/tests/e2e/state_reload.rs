//! Runtime state survives configuration changes, through the real
//! binaries: a rate-limit counter, a quota and a pooled backend connection
//! carry over a SIGHUP reload (also a rejected one) and a control-plane
//! write (adding a subscription through `edgegw-cp`); a changed limit
//! takes effect at once, with a fresh counter.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use edgegw_tests::{
    apim::{Answer, ApimGateway, fetch},
    backends::TestBackend,
    cp::ControlPlane,
    managed::{ManagedNode, admin_ok, register},
    process::TempDir,
};
use serde_json::json;

/// Remaining calls in the `RateLimit` header of policy `name`.
fn remaining(a: &Answer, name: &str) -> u64 {
    let prefix = format!("\"{name}\";r=");
    a.headers
        .iter()
        .filter(|(n, _)| n == "ratelimit")
        .find_map(|(_, v)| v.strip_prefix(&prefix))
        .and_then(|rest| rest.split(';').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no RateLimit for {name}: {:?}", a.headers))
}

/// One call: (rate-limit remaining, quota remaining, backend connection).
fn call(url: &str) -> (u64, u64, String) {
    let a = fetch(&[url]);
    assert_eq!(a.status, 200, "{}", a.body);
    let peer = a
        .header("x-echo-peer")
        .expect("answered by the echo")
        .into();
    (remaining(&a, "rate-limit"), remaining(&a, "quota"), peer)
}

/// Waits until `log()` holds `line` more than `before` times.
fn wait_logged(log: impl Fn() -> String, line: &str, before: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while log().matches(line).count() <= before {
        assert!(Instant::now() < deadline, "no {line:?}:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn catalog(calls: u64, generation: &str) -> String {
    format!(
        r#"
policies:
  outbound:
    - set-header: {{name: x-generation, value: "{generation}"}}
apis:
  - name: limited
    subscription_required: false
    policies:
      inbound:
        - rate-limit: {{calls: {calls}, renewal_period: 600}}
        - quota: {{calls: 20, renewal_period: 3600}}
"#
    )
}

#[test]
fn counters_and_pooled_connections_survive_sighup_and_a_changed_limit_restarts() {
    let backend = TestBackend::echo();
    let apis = format!(
        "[[apis]]\nname = \"limited\"\npath = \"/limited\"\nbackend = \"http://{}\"\n",
        backend.addr
    );
    let gw = ApimGateway::start("state-hup", &apis, &catalog(10, "one"));
    let url = gw.url("/limited/x");
    let log = || gw.gw.daemon.log_text();
    // Enough calls for every worker thread to pool a backend connection.
    let mut pooled = BTreeSet::new();
    for n in 1..=8 {
        let (rate, quota, peer) = call(&url);
        assert_eq!((rate, quota), (10 - n, 20 - n));
        pooled.insert(peer);
    }

    // An unrelated change: the counts continue, the connections stay.
    std::fs::write(&gw.catalog, catalog(10, "two")).unwrap();
    let before = log().matches("configuration reloaded").count();
    gw.gw.daemon.signal(libc::SIGHUP);
    wait_logged(log, "configuration reloaded", before);
    let a = fetch(&[&url]);
    assert_eq!(a.header("x-generation"), Some("two"));
    assert_eq!(
        (remaining(&a, "rate-limit"), remaining(&a, "quota")),
        (1, 11)
    );
    assert!(
        pooled.contains(a.header("x-echo-peer").unwrap()),
        "{pooled:?}"
    );

    // A rejected reload changes nothing either.
    std::fs::write(
        &gw.catalog,
        "apis: [{name: limited, policies: {inbound: [rate-limt]}}]",
    )
    .unwrap();
    let before = log().matches("configuration reload rejected").count();
    gw.gw.daemon.signal(libc::SIGHUP);
    wait_logged(log, "configuration reload rejected", before);
    let (rate, quota, peer) = call(&url);
    assert_eq!((rate, quota), (0, 10));
    assert!(pooled.contains(&peer));
    assert_eq!(fetch(&[&url]).status, 429, "the limit holds across reloads");

    // A changed limit: a fresh rate-limit counter; the quota carries on.
    std::fs::write(&gw.catalog, catalog(30, "three")).unwrap();
    let before = log().matches("configuration reloaded").count();
    gw.gw.daemon.signal(libc::SIGHUP);
    wait_logged(log, "configuration reloaded", before);
    let (rate, quota, peer) = call(&url);
    assert_eq!((rate, quota), (29, 9));
    assert!(pooled.contains(&peer), "{peer} is not one of {pooled:?}");
}

/// The managed API: a rate limit of `calls` and a quota of 20, forwarded
/// to `backend`.
fn managed_api(backend: &TestBackend, calls: u64, generation: &str) -> serde_json::Value {
    json!({
        "path": "/limited",
        "backend": format!("http://{}", backend.addr),
        "subscription_required": false,
        "policies": {
            "inbound": [
                {"rate-limit": {"calls": calls, "renewal_period": 600}},
                {"quota": {"calls": 20, "renewal_period": 3600}},
            ],
            "outbound": [{"set-header": {"name": "x-generation", "value": generation}}],
        },
    })
}

#[test]
fn counters_and_pooled_connections_survive_a_control_plane_write() {
    let backend = TestBackend::echo();
    let tmp = TempDir::new("state-cp");
    let cp = ControlPlane::start(&tmp.0);
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/limited",
        managed_api(&backend, 10, "one"),
    );
    let token = register(&cp, "gw-state", &["limited"], None);
    let mut node = ManagedNode::of("state-cp-gw", &cp, &token, "");
    node.start();
    let url = format!("http://127.0.0.1:{}/limited/x", node.port);
    let mut pooled = BTreeSet::new();
    for n in 1..=8 {
        let (rate, quota, peer) = call(&url);
        assert_eq!((rate, quota), (10 - n, 20 - n));
        pooled.insert(peer);
    }

    // One subscription more arrives as a delta: the same counters and pools.
    let delta = "subscriptions from the control plane applied";
    let before = node.log().matches(delta).count();
    let (status, sub) = cp.admin(
        "POST",
        "/v1/subscriptions",
        Some(&json!({"id": "newcomer", "scope": "api:limited"})),
    );
    assert_eq!(status, 201, "{sub}");
    wait_logged(|| node.log(), delta, before);
    let key = sub["primary_key"].as_str().unwrap();
    let with_key = fetch(&[&url, "-H", &format!("Ocp-Apim-Subscription-Key: {key}")]);
    assert_eq!(with_key.status, 200, "the new subscription is served");
    let (rate, quota, peer) = call(&url);
    assert_eq!((rate, quota), (1, 11));
    assert!(pooled.contains(&peer), "{peer} is not one of {pooled:?}");

    // An unrelated API change is a whole new bundle: the counts continue,
    // the connections stay.
    let applied = "configuration from the control plane applied";
    let before = node.log().matches(applied).count();
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/limited",
        managed_api(&backend, 10, "two"),
    );
    wait_logged(|| node.log(), applied, before);
    let a = fetch(&[&url]);
    assert_eq!(a.header("x-generation"), Some("two"));
    assert_eq!(
        (remaining(&a, "rate-limit"), remaining(&a, "quota")),
        (0, 10)
    );
    assert!(
        pooled.contains(a.header("x-echo-peer").unwrap()),
        "{pooled:?}"
    );

    // A changed limit from the control plane takes effect, counting afresh.
    let before = node.log().matches(applied).count();
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/limited",
        managed_api(&backend, 30, "three"),
    );
    wait_logged(|| node.log(), applied, before);
    let (rate, quota, peer) = call(&url);
    assert_eq!((rate, quota), (29, 9));
    assert!(pooled.contains(&peer), "{peer} is not one of {pooled:?}");
    node.stop();
}
