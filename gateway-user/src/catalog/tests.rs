//! The pipelines composed per product and operation, and what
//! subscriptions grant; validation itself is tested in the model.

use super::*;

fn catalog() -> Catalog {
    let text = format!(
        r#"
policies:
  inbound: [{{set-header: {{name: x-env, value: prod}}}}]
apis:
  - name: orders
    operations:
      - name: get-order
        policies:
          inbound: [base, {{rate-limit: {{calls: 5, renewal_period: 60}}}}]
  - name: status
products:
  - {{name: starter, apis: [orders]}}
  - {{name: public, subscription_required: false, apis: [status]}}
subscriptions:
  - {{id: alice, scope: "product:starter", primary_key_sha256: {}}}
  - {{id: ops, scope: all, primary_key_sha256: {}}}
"#,
        to_hex(&hash_key("a1")),
        to_hex(&hash_key("o1")),
    );
    Catalog::parse(
        "catalog.yaml",
        &text,
        None,
        None,
        &mut crate::state_registry::Staging::fresh(),
    )
    .unwrap()
}

#[test]
fn grants_follow_the_subscription_scope() {
    let c = catalog();
    let subscriptions = c.subscriptions();
    let alice = subscriptions.find("a1").unwrap();
    assert_eq!(c.grants(alice, "orders"), Some(Some(0)));
    assert_eq!(c.grants(alice, "status"), None);
    let ops = subscriptions.find("o1").unwrap();
    assert_eq!(c.grants(ops, "status"), Some(None));
}

#[test]
fn pipelines_compose_global_product_api_and_operation() {
    let c = catalog();
    let orders = c.api("orders").unwrap();
    assert!(orders.subscription_required);
    let shown = |p: &Pipeline| format!("{p:?}");
    let op = shown(orders.pipeline(Some("get-order"), Some(0)));
    assert!(op.contains("x-env") && op.contains("rate-limit"), "{op}");
    let api = shown(orders.pipeline(None, Some(0)));
    assert!(
        api.contains("x-env") && !api.contains("rate-limit"),
        "{api}"
    );
    let status = c.api("status").unwrap();
    assert!(!status.subscription_required);
    assert_eq!(status.open_product, Some(1));
    assert!(shown(c.unmanaged()).contains("x-env"));
}
