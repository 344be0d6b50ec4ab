use super::*;
use crate::{
    config::Config,
    keys::{hash_key, to_hex},
};

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

#[test]
fn validates_a_good_catalog() {
    let apis = gateway_apis();
    let c = Catalog::parse("catalog.yaml", &good(), Some(&apis), None).unwrap();
    assert_eq!(c.subscriptions.len(), 3);
    assert_eq!(&*c.subscriptions.find("a2").unwrap().id, "alice");
    let bob = c.subscriptions.find("b1").unwrap();
    assert_eq!(bob.state, State::Suspended);
    let orders = &c.apis[0];
    assert!(orders.subscription_required);
    assert_eq!(orders.key_header, "ocp-apim-subscription-key");
    assert_eq!(orders.in_products, [0]);
    let status = &c.apis[1];
    assert!(!status.subscription_required);
    assert_eq!(status.open_product, Some(1));
    let (name, scope) = &orders.operations[0];
    assert_eq!(name, "get-order");
    assert_eq!(
        scope
            .policies()
            .map(|p| p.place.as_str())
            .collect::<Vec<_>>(),
        ["api orders/operation get-order/inbound/1"]
    );
}

#[test]
fn reports_every_problem_with_its_place() {
    let apis = gateway_apis();
    let text = good()
        .replace("rate-limit:", "rate-limt:")
        .replace("name: get-order", "name: get-ordr")
        .replace("apis: [status]", "apis: [status, nope]")
        .replace("state: suspended", "state: paused")
        .replace("scope: all", "scope: everything");
    let err = Catalog::parse("catalog.yaml", &text, Some(&apis), None).unwrap_err();
    let CatalogError::Invalid { problems } = err else {
        panic!("{err}")
    };
    let want = [
        "catalog.yaml: api \"orders\": operation \"get-ordr\": inbound: unknown policy \"rate-limt\"",
        "catalog.yaml: api \"orders\": operation \"get-ordr\": the API has no operation of that name",
        "catalog.yaml: product \"public\": api \"nope\" is not in the catalog's apis",
        "catalog.yaml: subscription \"bob\": state \"paused\" is unknown",
        "catalog.yaml: subscription \"ops\": scope \"everything\" must be",
    ];
    assert_eq!(problems.len(), want.len(), "{problems:#?}");
    for w in want {
        assert!(
            problems.iter().any(|p| p.starts_with(w)),
            "{w}: {problems:#?}"
        );
    }
}

#[test]
fn structure_errors_name_the_file_and_line() {
    let err = Catalog::parse("catalog.yaml", "apis:\n  - nme: x\n", None, None)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("catalog.yaml: "), "{err}");
    assert!(err.contains("nme") && err.contains("line 2"), "{err}");
}

#[test]
fn unknown_apis_are_reported_only_against_a_gateway() {
    let text = "apis:\n  - name: ghost\n";
    assert!(Catalog::parse("c.yaml", text, None, None).is_ok());
    let err = Catalog::parse("c.yaml", text, Some(&gateway_apis()), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("api \"ghost\": no API of that name"), "{err}");
}

/// A fragment (XML or the native list) expands in place at any scope and
/// in choose branches; each inclusion has its own place.
#[test]
fn fragments_expand_at_every_scope() {
    let text = r#"
fragments:
  - name: stamp
    policies: |
      <fragment>
        <set-header name="x-stamp" exists-action="override"><value>on</value></set-header>
        <include-fragment fragment-id="inner" />
      </fragment>
  - name: inner
    policies:
      - set-header: {name: x-inner, value: "yes"}
policies: |
  <policies><inbound><include-fragment fragment-id="stamp" /></inbound></policies>
apis:
  - name: orders
    policies:
      inbound:
        - base
        - include-fragment: {fragment-id: stamp}
        - choose:
            - when: "'a' == 'a'"
              policies: [{include-fragment: inner}]
"#;
    let catalog = Catalog::parse("c.yaml", text, Some(&gateway_apis()), None).unwrap();
    let places: Vec<&str> = catalog
        .global
        .policies()
        .map(|p| p.place.as_str())
        .collect();
    assert_eq!(
        places,
        [
            "global policies/inbound/0/fragment stamp/0",
            "global policies/inbound/0/fragment stamp/1/fragment inner/0"
        ]
    );
    let api: Vec<&str> = catalog.apis[0]
        .policies
        .policies()
        .map(|p| p.place.as_str())
        .collect();
    assert_eq!(api.len(), 3, "{api:?}");
    assert_eq!(api[0], "api orders/inbound/1/fragment stamp/0");
}

/// A cycle or a missing fragment is refused in one line naming the chain.
#[test]
fn fragment_cycles_and_missing_fragments_are_refused() {
    let text = r#"
fragments:
  - name: a
    policies: '<fragment><include-fragment fragment-id="b" /></fragment>'
  - name: b
    policies: [{include-fragment: a}]
  - name: c
    policies: '<fragment><include-fragment fragment-id="nope" /></fragment>'
  - name: bad
    policies: '<fragment><set-header name="x"</fragment>'
apis:
  - name: orders
    policies: '<policies><inbound><include-fragment fragment-id="a" /><include-fragment fragment-id="c" /></inbound></policies>'
"#;
    let Err(CatalogError::Invalid { problems }) =
        Catalog::parse("c.yaml", text, Some(&gateway_apis()), None)
    else {
        panic!("refused")
    };
    let all = problems.join("\n");
    assert!(
        all.contains("fragment \"a\" includes itself (chain a -> b -> a)"),
        "{all}"
    );
    assert!(
        all.contains("fragment \"nope\" does not exist (chain c -> nope)"),
        "{all}"
    );
    assert!(
        all.contains("c.yaml: fragment \"bad\": policy XML line 1"),
        "{all}"
    );
    assert_eq!(problems.len(), 3, "{all}");
}
