//! Rate limits and quotas end to end: exact counts under concurrency,
//! 429 / 403 with `Retry-After` and the IETF `RateLimit` headers, per
//! subscription and per key.

use std::process::Command;

use edgegw_tests::{
    apim::{ApimGateway, fetch, hash_key},
    backends::TestBackend,
};

fn start(tag: &str, backend: &TestBackend) -> ApimGateway {
    let b = backend.addr;
    let apis = format!(
        r#"
[[apis]]
name = "limited"
path = "/limited"
backend = "http://{b}"
[[apis]]
name = "metered"
path = "/metered"
backend = "http://{b}"
[[apis]]
name = "tenants"
path = "/tenants"
backend = "http://{b}"
[[apis]]
name = "single"
path = "/single"
backend = "http://{b}"
"#
    );
    let catalog = format!(
        r#"
apis:
  - name: limited
    policies:
      inbound:
        - rate-limit: {{calls: 100, renewal_period: 60}}
  - name: metered
    policies:
      inbound:
        - quota: {{calls: 3, renewal_period: 3600}}
  - name: tenants
    subscription_required: false
    policies:
      inbound:
        - rate-limit-by-key: {{calls: 2, renewal_period: 60, counter_key: "{{api}}:{{header:x-tenant}}"}}
        - quota-by-key: {{calls: 3, renewal_period: 600, counter_key: "{{client_ip}}"}}
  - name: single
    subscription_required: false
    policies:
      inbound:
        - limit-concurrency: {{max_count: 1}}
subscriptions:
  - {{id: alice, scope: all, primary_key_sha256: {}}}
  - {{id: bob, scope: all, primary_key_sha256: {}}}
"#,
        hash_key("alice-key"),
        hash_key("bob-key"),
    );
    ApimGateway::start(tag, &apis, &catalog)
}

#[test]
fn fifty_concurrent_clients_get_exactly_the_limit() {
    let backend = TestBackend::echo();
    let gw = start("exact", &backend);
    let url = gw.url("/limited/x");
    // 50 clients, 4 calls each: 200 calls against 100 per minute.
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let out = Command::new("curl")
                    .args(["-sS", "--max-time", "20"])
                    .args(["-H", "Ocp-Apim-Subscription-Key: alice-key"])
                    .args(["-w", "%{http_code}\n"])
                    .args(std::iter::repeat_n(["-o", "/dev/null", url.as_str()], 4).flatten())
                    .output()
                    .unwrap();
                String::from_utf8(out.stdout).unwrap()
            })
        })
        .collect();
    let codes: Vec<String> = clients
        .into_iter()
        .flat_map(|c| {
            c.join()
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(codes.len(), 200);
    let ok = codes.iter().filter(|c| *c == "200").count();
    let limited = codes.iter().filter(|c| *c == "429").count();
    assert_eq!((ok, limited), (100, 100), "{codes:?}");
    assert_eq!(backend.hits(), 100);

    // Another subscription has its own window.
    let r = fetch(&["-H", "Ocp-Apim-Subscription-Key: bob-key", &url]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("ratelimit"), Some("\"rate-limit\";r=99;t=60"));
}

#[test]
fn rate_limit_answer_carries_retry_after_and_ratelimit_headers() {
    let backend = TestBackend::echo();
    let gw = start("headers", &backend);
    let alice = "Ocp-Apim-Subscription-Key: alice-key";
    let first = fetch(&["-H", alice, &gw.url("/limited/x")]);
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("ratelimit-policy"),
        Some("\"rate-limit\";q=100;w=60")
    );
    assert_eq!(first.header("ratelimit"), Some("\"rate-limit\";r=99;t=60"));

    // Quota: 3 calls, then 403 with Retry-After up to an hour.
    for left in [2, 1, 0] {
        let r = fetch(&["-H", alice, &gw.url("/metered/x")]);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.header("ratelimit")
                .unwrap()
                .contains(&format!(";r={left};"))
        );
    }
    let r = fetch(&["-H", alice, &gw.url("/metered/x")]);
    assert_eq!(r.status, 403, "{}", r.body);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&retry), "{retry}");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("Out of call volume quota")
    );
    assert_eq!(r.header("ratelimit-policy"), Some("\"quota\";q=3;w=3600"));
    assert!(
        r.header("ratelimit")
            .unwrap()
            .starts_with("\"quota\";r=0;t=")
    );
}

#[test]
fn by_key_limits_count_per_rendered_key() {
    let backend = TestBackend::echo();
    let gw = start("bykey", &backend);
    let call = |tenant: &str| fetch(&["-H", &format!("x-tenant: {tenant}"), &gw.url("/tenants/x")]);
    assert_eq!(call("a").status, 200);
    assert_eq!(call("a").status, 200);
    let r = call("a");
    assert_eq!(r.status, 429, "{}", r.body);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("Rate limit is exceeded")
    );
    // Tenant b has its own rate window; the per-IP quota (3) is shared.
    assert_eq!(call("b").status, 200);
    let r = call("b");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert_eq!(backend.hits(), 3);
}

#[test]
fn limit_concurrency_refuses_requests_beyond_the_count() {
    let backend = TestBackend::echo();
    let gw = start("conc", &backend);
    let slow_url = gw.url("/single/x?delay_ms=2000");
    let slow = std::thread::spawn(move || fetch(&[&slow_url]).status);
    // Wait until the slow request is at the backend, holding the slot.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while backend.hits() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "slow request never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let r = fetch(&[&gw.url("/single/x")]);
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(slow.join().unwrap(), 200);
    // The slot is free again.
    assert_eq!(fetch(&[&gw.url("/single/x")]).status, 200);
}
