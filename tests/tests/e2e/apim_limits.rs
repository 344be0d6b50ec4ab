//! Rate limits and quotas end to end: exact counts under concurrency,
//! 429 / 403 with `Retry-After` and the IETF `RateLimit` headers, per
//! subscription and per key; bandwidth quotas charged with body bytes.

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
[[apis]]
name = "bulk"
path = "/bulk"
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
  - name: bulk
    policies:
      inbound:
        - quota: {{bandwidth: 4, renewal_period: 3600}}
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
    // The same answer written by hyper (HTTP/2) carries them too, once.
    let r = fetch(&[
        "--http2-prior-knowledge",
        "-H",
        alice,
        &gw.url("/metered/x"),
    ]);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.header("ratelimit-policy"), Some("\"quota\";q=3;w=3600"));
    let limits = r.headers.iter().filter(|(n, _)| n == "ratelimit").count();
    assert_eq!(limits, 1, "{:?}", r.headers);
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

#[test]
fn bandwidth_quota_counts_request_and_response_bytes() {
    let backend = TestBackend::echo();
    let gw = start("bandwidth", &backend);
    let url = gw.url("/bulk/x");
    let alice = "Ocp-Apim-Subscription-Key: alice-key";
    let tmp = edgegw_tests::process::TempDir::new("bw-body");
    let body = tmp.write("body", &"a".repeat(3000));
    let upload = format!("@{}", body.display());
    // One curl, one keep-alive connection: each call ends (and is charged)
    // before the next one is read.
    let format = "%{http_code} %{size_download} %header{ratelimit}\n";
    let call = ["-H", alice, "-o", "/dev/null", "-w", format, url.as_str()];
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(call)
        .args(["--next"])
        .args(call)
        .args(["--next", "--data-binary", &upload])
        .args(call)
        .args(["--next"])
        .args(call)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<(u16, u64, String)> = text
        .lines()
        .map(|l| {
            let mut f = l.splitn(3, ' ');
            let status = f.next().unwrap().parse().unwrap();
            let size = f.next().unwrap().parse().unwrap();
            (status, size, f.next().unwrap_or_default().to_string())
        })
        .collect();
    assert_eq!(rows.len(), 4, "{text}");
    let remaining = |row: &(u16, u64, String)| -> u64 {
        let r = row
            .2
            .split(";r=")
            .nth(1)
            .unwrap_or_else(|| panic!("{text}"));
        r.split(';').next().unwrap().parse().unwrap()
    };
    // 4 KiB per hour; the first call finds all of it.
    assert_eq!(rows[0].0, 200, "{text}");
    assert!(
        rows[0].2.starts_with("\"quota-bandwidth\";r=4096;t="),
        "{text}"
    );
    // The second finds it less the first response's body.
    assert_eq!(rows[1].0, 200, "{text}");
    assert_eq!(remaining(&rows[1]), 4096 - rows[0].1, "{text}");
    // The third, with a 3000-byte body, is admitted (bytes were left) ...
    assert_eq!(rows[2].0, 200, "{text}");
    assert_eq!(remaining(&rows[2]), 4096 - rows[0].1 - rows[1].1, "{text}");
    // ... and uses the rest up: the fourth is refused.
    assert_eq!(rows[3].0, 403, "{text}");
    assert!(
        rows[3].2.starts_with("\"quota-bandwidth\";r=0;t="),
        "{text}"
    );
    assert_eq!(backend.hits(), 3);

    let r = fetch(&["-H", alice, &url]);
    assert_eq!(r.status, 403, "{}", r.body);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&retry), "{retry}");
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("Out of bandwidth quota"),
        "{}",
        r.body
    );
    assert_eq!(
        r.header("ratelimit-policy"),
        Some("\"quota-bandwidth\";q=4096;qu=\"content-bytes\";w=3600")
    );
    // Another subscription has its own bandwidth.
    let r = fetch(&["-H", "Ocp-Apim-Subscription-Key: bob-key", &url]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(backend.hits(), 4);
}
