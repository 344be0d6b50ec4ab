//! Subscription keys end to end: the real `edgegw` with a catalog, curl as
//! the client, a real echo backend that shows what was forwarded.

use edgegw_tests::{
    apim::{ApimGateway, fetch, hash_key},
    backends::TestBackend,
};

fn gateway_apis(backend: &TestBackend) -> String {
    let b = backend.addr;
    format!(
        r#"
[[apis]]
name = "orders"
path = "/orders"
backend = "http://{b}"
[[apis]]
name = "billing"
path = "/billing"
backend = "http://{b}"
[[apis]]
name = "status"
path = "/status"
backend = "http://{b}"
[[apis]]
name = "plain"
path = "/plain"
backend = "http://{b}"
"#
    )
}

fn catalog(extra_subscription: &str) -> String {
    format!(
        r#"
apis:
  - name: orders
  - name: billing
    subscription_key: {{header: X-Billing-Key, query: bkey}}
  - name: status
products:
  - name: starter
    apis: [orders]
  - name: public
    subscription_required: false
    apis: [status]
subscriptions:
  - id: alice
    scope: product:starter
    primary_key_sha256: {}
    secondary_key_sha256: {}
  - {{id: sam, scope: "product:starter", primary_key_sha256: {}, state: suspended}}
  - {{id: eve, scope: "product:starter", primary_key_sha256: {}, state: expired}}
  - {{id: bill, scope: "api:billing", primary_key_sha256: {}}}
{extra_subscription}
"#,
        hash_key("alice-primary"),
        hash_key("alice-secondary"),
        hash_key("sam-key"),
        hash_key("eve-key"),
        hash_key("bill-key"),
    )
}

#[test]
fn keys_from_header_or_query_are_checked_and_stripped() {
    let backend = TestBackend::echo();
    let gw = ApimGateway::start("keys", &gateway_apis(&backend), &catalog(""));

    let missing = fetch(&[&gw.url("/orders/1")]);
    assert_eq!(missing.status, 401, "{}", missing.body);
    assert!(
        missing.json()["message"]
            .as_str()
            .unwrap()
            .contains("missing subscription key")
    );

    let wrong = fetch(&[
        "-H",
        "Ocp-Apim-Subscription-Key: nope",
        &gw.url("/orders/1"),
    ]);
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.json()["message"]
            .as_str()
            .unwrap()
            .contains("invalid subscription key")
    );

    // Primary key in the header: forwarded without it.
    let ok = fetch(&[
        "-H",
        "Ocp-Apim-Subscription-Key: alice-primary",
        &gw.url("/orders/1?x=1"),
    ]);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let echo = ok.json();
    assert!(
        echo["headers"].get("ocp-apim-subscription-key").is_none(),
        "{echo}"
    );
    assert_eq!(echo["query"], "x=1");

    // Secondary key in the query string: stripped, other parameters kept.
    let ok = fetch(&[&gw.url("/orders/1?a=1&subscription-key=alice-secondary&b=2")]);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["query"], "a=1&b=2");
    let ok = fetch(&[&gw.url("/orders/1?subscription-key=alice-secondary")]);
    assert_eq!(ok.json()["query"], serde_json::Value::Null);

    // Suspended and expired subscriptions: 403.
    for key in ["sam-key", "eve-key"] {
        let r = fetch(&[
            "-H",
            &format!("Ocp-Apim-Subscription-Key: {key}"),
            &gw.url("/orders/1"),
        ]);
        assert_eq!(r.status, 403, "{key}: {}", r.body);
    }
    let r = fetch(&[
        "-H",
        "Ocp-Apim-Subscription-Key: sam-key",
        &gw.url("/orders/1"),
    ]);
    assert!(r.body.contains("suspended"), "{}", r.body);

    // A valid key of a subscription that does not cover the API: 401.
    let r = fetch(&[
        "-H",
        "Ocp-Apim-Subscription-Key: bill-key",
        &gw.url("/orders/1"),
    ]);
    assert_eq!(r.status, 401);
    assert!(
        backend.hits() == 3,
        "only admitted requests reach the backend"
    );
}

#[test]
fn key_names_are_per_api_and_open_products_need_no_key() {
    let backend = TestBackend::echo();
    let gw = ApimGateway::start("names", &gateway_apis(&backend), &catalog(""));

    // billing reads X-Billing-Key / ?bkey only.
    let r = fetch(&[
        "-H",
        "Ocp-Apim-Subscription-Key: bill-key",
        &gw.url("/billing/x"),
    ]);
    assert_eq!(r.status, 401);
    let r = fetch(&["-H", "X-Billing-Key: bill-key", &gw.url("/billing/x")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["headers"].get("x-billing-key").is_none());
    let r = fetch(&[&gw.url("/billing/x?bkey=bill-key&q=1")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["query"], "q=1");

    // An API in an open product, and one the catalog does not list.
    assert_eq!(fetch(&[&gw.url("/status")]).status, 200);
    assert_eq!(fetch(&[&gw.url("/plain")]).status, 200);
}

#[test]
fn sighup_reloads_the_catalog_and_rejects_a_bad_one_whole() {
    let backend = TestBackend::echo();
    let mut gw = ApimGateway::start("reload", &gateway_apis(&backend), &catalog(""));
    let carol = ["-H", "Ocp-Apim-Subscription-Key: carol-key"];
    assert_eq!(
        fetch(&[carol[0], carol[1], &gw.url("/orders/1")]).status,
        401
    );

    let added = format!(
        "  - {{id: carol, scope: all, primary_key_sha256: {}}}",
        hash_key("carol-key")
    );
    std::fs::write(&gw.catalog, catalog(&added)).unwrap();
    gw.gw.daemon.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(|| fetch(&[carol[0], carol[1], &gw.url("/orders/1")]).status == 200);

    // A catalog with a mistake is rejected whole; carol keeps working.
    std::fs::write(
        &gw.catalog,
        catalog(&added).replace("scope: all", "scope: al"),
    )
    .unwrap();
    gw.gw.daemon.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(|| {
        gw.gw
            .daemon
            .log_text()
            .contains("configuration reload rejected")
    });
    let log = gw.gw.daemon.log_text();
    assert!(
        log.contains("subscription \\\"carol\\\": scope \\\"al\\\"")
            || log.contains("subscription \"carol\": scope \"al\""),
        "{log}"
    );
    assert_eq!(
        fetch(&[carol[0], carol[1], &gw.url("/orders/1")]).status,
        200
    );
    assert_eq!(gw.gw.daemon.stop(), Some(0));
}

fn wait_for(mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met in 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
