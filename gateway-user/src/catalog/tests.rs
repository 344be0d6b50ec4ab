use super::*;
use crate::config::Config;

fn gateway_apis() -> Vec<Api> {
    Config::parse(
        "t.toml",
        r#"
        [gateway]
        listen = "127.0.0.1:1"
        [[apis]]
        name = "orders"
        path = "/orders"
        backend = "http://b:1"
        [[apis.operations]]
        name = "get-order"
        method = "GET"
        url = "/{id}"
        [[apis]]
        name = "status"
        path = "/status"
        backend = "http://b:1"
        "#,
    )
    .unwrap()
    .apis
}

fn key(k: &str) -> String {
    to_hex(&hash_key(k))
}

fn good() -> String {
    format!(
        r#"
named_values:
  - {{name: env, value: prod}}
policies:
  inbound:
    - set-header: {{name: x-env, value: "{{{{env}}}}"}}
apis:
  - name: orders
    operations:
      - name: get-order
        policies:
          inbound: [base, {{rate-limit: {{calls: 5, renewal_period: 60}}}}]
  - name: status
products:
  - name: starter
    apis: [orders]
  - name: public
    subscription_required: false
    apis: [status]
subscriptions:
  - {{id: alice, scope: "product:starter", primary_key_sha256: {}, secondary_key_sha256: {}}}
  - {{id: bob, scope: "api:orders", primary_key_sha256: {}, state: suspended}}
  - {{id: ops, scope: all, primary_key_sha256: {}}}
"#,
        key("a1"),
        key("a2"),
        key("b1"),
        key("o1")
    )
}

/// The pipelines composed per product and operation; validation itself
/// is tested in the model.
#[test]
fn parses_a_good_catalog() {
    let apis = gateway_apis();
    let c = Catalog::parse("catalog.yaml", &good(), Some(&apis)).unwrap();
    assert_eq!(c.subscriptions.len(), 3);
    let alice = c.subscriptions.find("a2").unwrap();
    assert_eq!(c.grants(alice, "orders"), Some(Some(0)));
    assert_eq!(c.grants(alice, "status"), None);
    let bob = c.subscriptions.find("b1").unwrap();
    assert_eq!(bob.state, State::Suspended);
    assert_eq!(c.grants(bob, "orders"), Some(None));
    assert_eq!(
        c.grants(c.subscriptions.find("o1").unwrap(), "status"),
        Some(None)
    );
    let orders = c.api("orders").unwrap();
    assert!(orders.subscription_required);
    assert_eq!(orders.key_header, "ocp-apim-subscription-key");
    let status = c.api("status").unwrap();
    assert!(!status.subscription_required);
    assert_eq!(status.open_product, Some(1));
    assert!(!orders.pipeline(Some("get-order"), Some(0)).is_empty());
}
