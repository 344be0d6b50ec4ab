//! Policies end to end: scopes and `base`, request and response
//! transformations, filters, canned responses, CORS and the backend
//! timeout, through the real `edgegw` and a real echo backend.

use edgegw_tests::{
    apim::{ApimGateway, fetch, hash_key},
    backends::TestBackend,
    process::{TempDir, edgegw},
};

fn start(tag: &str, backend: &TestBackend) -> ApimGateway {
    let b = backend.addr;
    let apis = format!(
        r#"
[[apis]]
name = "shop"
path = "/shop"
backend = "http://{b}"
[[apis.operations]]
name = "get-item"
method = "GET"
url = "/items/{{id}}"
[[apis.operations]]
name = "mock-item"
method = "GET"
url = "/mock"
[[apis.operations]]
name = "teapot"
method = "GET"
url = "/teapot"
[[apis.operations]]
name = "local-only"
method = "GET"
url = "/local"
[[apis.operations]]
name = "slow"
method = "GET"
url = "/slow"
[[apis.operations]]
name = "anything"
method = "*"
url = "/*"
"#
    );
    let catalog = format!(
        r#"
named_values:
  - {{name: region, value: eu-west}}
  - {{name: token, value: s3cr3t-t0ken, secret: true}}
policies:
  inbound:
    - cors:
        allowed_origins: [https://app.example]
        allowed_methods: [GET, PUT]
        allowed_headers: [ocp-apim-subscription-key, content-type]
        expose_headers: [x-gateway]
        preflight_result_max_age: 600
    - set-query-parameter: {{name: trace, value: global, exists_action: append}}
  outbound:
    - set-header: {{name: x-gateway, value: edgegw}}
  on-error:
    - set-header: {{name: x-error-handled, value: "yes"}}
apis:
  - name: shop
    policies:
      inbound:
        - base
        - set-query-parameter: {{name: trace, value: api, exists_action: append}}
        - set-header: {{name: x-region, value: "{{{{region}}}}"}}
        - set-header: {{name: authorization, value: "Bearer {{{{token}}}}"}}
        - set-header: {{name: x-remove-me, exists_action: delete}}
    operations:
      - name: get-item
        policies:
          inbound:
            - set-query-parameter: {{name: trace, value: op, exists_action: append}}
            - base
            - rewrite-uri: {{template: "/v2/items/{{id}}/detail"}}
          outbound:
            - base
            - set-status: {{code: 203}}
      - name: mock-item
        policies:
          inbound:
            - mock-response: {{status_code: 200, body: '{{"id": "mock"}}'}}
      - name: teapot
        policies:
          inbound:
            - base
            - check-header: {{name: x-env, values: [prod], failed_check_httpcode: 400, failed_check_error_message: "x-env must be prod"}}
            - return-response: {{status_code: 418, content_type: text/plain, body: "short and stout", headers: {{x-tea: earl-grey}}}}
      - name: local-only
        policies:
          inbound:
            - ip-filter: {{action: forbid, addresses: [127.0.0.0/8]}}
      - name: slow
        policies:
          backend:
            - forward-request: {{timeout: 1}}
products:
  - name: starter
    apis: [shop]
    policies:
      inbound:
        - set-query-parameter: {{name: trace, value: product, exists_action: append}}
        - base
subscriptions:
  - {{id: alice, scope: "product:starter", primary_key_sha256: {}}}
  - {{id: ops, scope: all, primary_key_sha256: {}}}
"#,
        hash_key("alice-key"),
        hash_key("ops-key"),
    );
    ApimGateway::start(tag, &apis, &catalog)
}

const ALICE: &str = "Ocp-Apim-Subscription-Key: alice-key";
const OPS: &str = "Ocp-Apim-Subscription-Key: ops-key";

#[test]
fn scopes_compose_with_base_and_transform_the_request() {
    let backend = TestBackend::echo();
    let gw = start("scopes", &backend);

    // Operation → base (product → base (global) ) → API, through product "starter".
    let r = fetch(&[
        "-H",
        ALICE,
        "-H",
        "x-remove-me: 1",
        &gw.url("/shop/items/7?q=1"),
    ]);
    assert_eq!(r.status, 203, "{}", r.body);
    assert_eq!(r.header("x-gateway"), Some("edgegw"));
    let echo = r.json();
    assert_eq!(echo["path"], "/v2/items/7/detail");
    assert_eq!(
        echo["query"],
        "q=1&trace=op&trace=product&trace=global&trace=api"
    );
    let h = &echo["headers"];
    assert_eq!(h["x-region"], "eu-west");
    assert_eq!(h["authorization"], "Bearer s3cr3t-t0ken");
    assert!(h.get("x-remove-me").is_none(), "{h}");

    // No product (an all-APIs subscription), an operation without its own
    // policies: global → API only.
    let r = fetch(&["-H", OPS, &gw.url("/shop/other")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["query"], "trace=global&trace=api");
    assert_eq!(r.json()["path"], "/other");

    // Secret named values never reach the log.
    assert!(!gw.gw.daemon.log_text().contains("s3cr3t"));
}

#[test]
fn canned_responses_header_checks_and_ip_filter() {
    let backend = TestBackend::echo();
    let gw = start("canned", &backend);

    let r = fetch(&["-H", ALICE, &gw.url("/shop/mock")]);
    assert_eq!((r.status, r.body.as_str()), (200, "{\"id\": \"mock\"}"));
    assert_eq!(r.header("content-type"), Some("application/json"));

    let r = fetch(&["-H", ALICE, &gw.url("/shop/teapot")]);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "x-env must be prod");
    assert_eq!(r.header("x-error-handled"), Some("yes"), "on-error runs");

    let r = fetch(&["-H", ALICE, "-H", "x-env: prod", &gw.url("/shop/teapot")]);
    assert_eq!((r.status, r.body.as_str()), (418, "short and stout"));
    assert_eq!(r.header("x-tea"), Some("earl-grey"));

    let r = fetch(&["-H", ALICE, &gw.url("/shop/local")]);
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-error-handled"), Some("yes"));

    // The key check's own errors go through on-error too.
    let r = fetch(&[&gw.url("/shop/mock")]);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("x-error-handled"), Some("yes"));
    assert_eq!(backend.hits(), 0, "nothing above reached the backend");
}

/// An ip-filter range with host bits set is refused, not truncated, with
/// the message the DoS lists give for the same text (one parser).
#[test]
fn ip_filter_refuses_host_bits_as_the_dos_lists_do() {
    let tmp = TempDir::new("ipfilter");
    let stderr = |args: &[&str]| {
        let out = edgegw(args);
        assert!(!out.status.success(), "edgegw {args:?} accepted it");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for (entry, fixed) in [
        ("10.0.0.1/8", "10.0.0.0/8"),
        ("2001:db8::1/32", "2001:db8::/32"),
    ] {
        let catalog = tmp.write(
            "catalog.yaml",
            &format!(
                "apis:\n  - name: shop\n    policies:\n      inbound:\n        - ip-filter: {{action: allow, addresses: [127.0.0.1, '{entry}']}}\n"
            ),
        );
        let from_catalog = stderr(&["catalog", "validate", catalog.to_str().unwrap()]);
        let config = tmp.write(
            "edgegw.toml",
            &format!("[gateway]\nlisten = \"127.0.0.1:1\"\n[xdp]\nmode = \"off\"\n[dos]\nallow = [\"{entry}\"]\n"),
        );
        let from_dos = stderr(&["config", "validate", config.to_str().unwrap()]);
        let message = format!("\"{entry}\" has host bits set; did you mean \"{fixed}\"?");
        assert!(
            from_catalog.contains(&format!("policy \"ip-filter\": {message}")),
            "{from_catalog}"
        );
        assert!(
            from_dos.contains(&format!("dos.allow: {message}")),
            "{from_dos}"
        );
    }
}

#[test]
fn cors_preflight_and_simple_requests() {
    let backend = TestBackend::echo();
    let gw = start("cors", &backend);
    let origin = "Origin: https://app.example";

    // Preflight: answered by the gateway, without a subscription key.
    let r = fetch(&[
        "-X",
        "OPTIONS",
        "-H",
        origin,
        "-H",
        "Access-Control-Request-Method: PUT",
        "-H",
        "Access-Control-Request-Headers: ocp-apim-subscription-key",
        &gw.url("/shop/items/1"),
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));

    // A preflight from another origin gets no CORS grant.
    let r = fetch(&[
        "-X",
        "OPTIONS",
        "-H",
        "Origin: https://evil.example",
        "-H",
        "Access-Control-Request-Method: PUT",
        &gw.url("/shop/items/1"),
    ]);
    assert!(r.header("access-control-allow-origin").is_none());

    // The actual request carries the grant and the exposed headers.
    let r = fetch(&["-H", ALICE, "-H", origin, &gw.url("/shop/items/1")]);
    assert_eq!(r.status, 203);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-expose-headers"), Some("x-gateway"));
    assert_eq!(backend.hits(), 1);
}

#[test]
fn forward_request_timeout_answers_504_through_on_error() {
    let backend = TestBackend::echo();
    let gw = start("timeout", &backend);
    let r = fetch(&["-H", ALICE, &gw.url("/shop/slow?delay_ms=3000")]);
    assert_eq!(r.status, 504, "{}", r.body);
    assert_eq!(r.header("x-error-handled"), Some("yes"));
    let r = fetch(&["-H", ALICE, &gw.url("/shop/slow?delay_ms=10")]);
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn set_backend_service_switches_the_backend() {
    let (main, other) = (TestBackend::echo(), TestBackend::echo());
    let apis = format!(
        "[[apis]]\nname = \"svc\"\npath = \"/svc\"\nbackend = \"http://{}\"\n",
        main.addr
    );
    let catalog = format!(
        r#"
apis:
  - name: svc
    subscription_required: false
    policies:
      inbound:
        - check-header: {{name: x-route}}
        - set-backend-service: {{base_url: "http://{}/v2"}}
"#,
        other.addr
    );
    let gw = ApimGateway::start("setbk", &apis, &catalog);
    let r = fetch(&["-H", "x-route: 1", &gw.url("/svc/items/1?a=1")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["path"], "/v2/items/1");
    assert_eq!(r.json()["query"], "a=1");
    assert_eq!((main.hits(), other.hits()), (0, 1));
}

/// A backend that answers 503 to its first `failures` requests, then 200;
/// returns its port and request counter.
fn flaky_backend(failures: usize) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::{
        io::{Read, Write},
        sync::atomic::Ordering,
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let _ = stream.read(&mut buf);
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let status = if n < failures {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            );
        }
    });
    (port, hits)
}

#[test]
fn retry_resends_on_listed_statuses_up_to_count() {
    use std::sync::atomic::Ordering;
    let (recovering, recovering_hits) = flaky_backend(2);
    let (failing, failing_hits) = flaky_backend(100);
    let (posted, posted_hits) = flaky_backend(1);
    let apis = format!(
        "[[apis]]\nname = \"recovering\"\npath = \"/recovering\"\nbackend = \"http://127.0.0.1:{recovering}\"\n\
         [[apis]]\nname = \"failing\"\npath = \"/failing\"\nbackend = \"http://127.0.0.1:{failing}\"\n\
         [[apis]]\nname = \"posted\"\npath = \"/posted\"\nbackend = \"http://127.0.0.1:{posted}\"\n"
    );
    let catalog = r#"
policies:
  backend:
    - retry: {count: 3, interval_ms: 20, exponential: true}
apis:
  - name: recovering
    subscription_required: false
  - name: posted
    subscription_required: false
  - name: failing
    subscription_required: false
    policies:
      backend:
        - retry: {count: 1, status_codes: [503]}
"#;
    let gw = ApimGateway::start("retry", &apis, catalog);
    assert_eq!(fetch(&[&gw.url("/recovering/x")]).status, 200);
    assert_eq!(
        recovering_hits.load(Ordering::SeqCst),
        3,
        "two 503s, then 200"
    );
    assert_eq!(fetch(&[&gw.url("/failing/x")]).status, 503);
    assert_eq!(failing_hits.load(Ordering::SeqCst), 2, "one retry only");
    // A request with a body is sent once.
    assert_eq!(fetch(&["-d", "payload", &gw.url("/posted/x")]).status, 503);
    assert_eq!(posted_hits.load(Ordering::SeqCst), 1);
}

/// A backend that answers 503 to its first `failures` requests, then 200,
/// keeping every request body it received.
fn recording_flaky_backend(
    failures: usize,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let n = {
                let mut all = kept.lock().unwrap();
                all.push(String::from_utf8_lossy(&body).into_owned());
                all.len()
            };
            let status = if n <= failures {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let _ = write!(
                reader.get_mut(),
                "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            );
        }
    });
    (port, bodies)
}

/// APIM's `<forward-request buffer-request-body="true" />`: the body is
/// read whole first, so `retry` sends the same body every time.
#[test]
fn a_buffered_body_is_sent_again_on_retry() {
    let (port, bodies) = recording_flaky_backend(2);
    let apis = format!(
        "[[apis]]\nname = \"orders\"\npath = \"/orders\"\nbackend = \"http://127.0.0.1:{port}\"\n"
    );
    let policy = r#"<policies>
  <inbound><base /></inbound>
  <backend>
    <retry condition="@(context.Response.StatusCode == 503)" count="3" interval="0">
      <forward-request timeout="10" buffer-request-body="true" buffer-response="false" />
    </retry>
  </backend>
</policies>"#;
    let catalog = format!(
        "apis:\n  - name: orders\n    subscription_required: false\n    policies: |\n{}",
        edgegw_tests::apim::block(policy, 6)
    );
    let gw = ApimGateway::start("retrybody", &apis, &catalog);
    let r = fetch(&["--data-binary", "order #1", &gw.url("/orders/x")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        *bodies.lock().unwrap(),
        ["order #1", "order #1", "order #1"]
    );
}
