//! APIM policy XML end to end, through the real `edgegw` and `edgegw-cp`:
//! documents written from Microsoft's policy reference in the node's
//! catalog file and through the control plane's REST API, enforced by a
//! real gateway against a real echo backend; policy expressions evaluated
//! per request; bad documents refused whole with their line and column.

use edgegw_tests::{
    apim::{ApimGateway, block, fetch, hash_key},
    backends::TestBackend,
    cp::ControlPlane,
    managed::{ManagedNode, admin_ok, register},
    process::{TempDir, edgegw, free_port},
};
use serde_json::json;

fn apis(backend: &TestBackend) -> String {
    format!(
        "[[apis]]\nname = \"shop\"\npath = \"/shop\"\nbackend = \"http://{}\"\n\
         [[apis.operations]]\nname = \"get-item\"\nmethod = \"GET\"\nurl = \"/items/{{id}}\"\n\
         [[apis.operations]]\nname = \"other\"\nmethod = \"*\"\nurl = \"/*\"\n",
        backend.addr
    )
}

const GLOBAL: &str = r#"<policies>
  <inbound>
    <set-header name="x-global" exists-action="override">
      <value>{{region}}</value>
    </set-header>
  </inbound>
  <backend>
    <forward-request timeout="30" />
  </backend>
  <outbound>
    <set-header name="x-powered-by" exists-action="delete" />
  </outbound>
  <on-error>
    <set-header name="x-on-error" exists-action="override">
      <value>global</value>
    </set-header>
  </on-error>
</policies>"#;

const API: &str = r#"<policies>
  <inbound>
    <base />
    <rate-limit-by-key calls="2" renewal-period="600"
                       counter-key='@(String.Concat(context.Subscription.Id, "-x"))' />
    <set-header name="x-sub" exists-action="override">
      <value>@(context.Subscription.Id + "/" + context.Request.Method)</value>
    </set-header>
    <choose>
      <when condition='@(context.Request.Headers.GetValueOrDefault("x-tier", "") == "gold")'>
        <set-header name="x-branch" exists-action="override">
          <value>gold</value>
        </set-header>
      </when>
      <when condition='@(int.Parse(context.Request.Headers.GetValueOrDefault("x-n", "0")) > 5)'>
        <return-response>
          <set-status code="418" reason="I'm a teapot" />
          <set-header name="Content-Type" exists-action="override">
            <value>text/plain</value>
          </set-header>
          <set-body>many</set-body>
        </return-response>
      </when>
      <otherwise>
        <set-header name="x-branch" exists-action="override">
          <value>standard</value>
        </set-header>
      </otherwise>
    </choose>
  </inbound>
  <backend>
    <base />
  </backend>
  <outbound>
    <base />
    <set-header name="x-api" exists-action="override">
      <value>shop</value>
    </set-header>
  </outbound>
  <on-error>
    <base />
  </on-error>
</policies>"#;

const OPERATION: &str = r#"<policies>
  <inbound>
    <base />
    <rewrite-uri template="/v2/items/{id}" copy-unmatched-params="true" />
  </inbound>
</policies>"#;

fn catalog() -> String {
    format!(
        "named_values:\n  - {{name: region, value: edge-1}}\n\
         policies: |\n{}\
         apis:\n  - name: shop\n    policies: |\n{}\
         \x20   operations:\n      - name: get-item\n        policies: |\n{}\
         subscriptions:\n  - {{id: a, scope: all, primary_key_sha256: {}}}\n  - {{id: b, scope: all, primary_key_sha256: {}}}\n",
        block(GLOBAL, 2),
        block(API, 6),
        block(OPERATION, 10),
        hash_key("key-a"),
        hash_key("key-b"),
    )
}

#[test]
fn xml_policies_in_the_catalog_file_run_at_every_scope() {
    let backend = TestBackend::echo();
    let gw = ApimGateway::start("apimxml", &apis(&backend), &catalog());
    let key = |k: &str| format!("Ocp-Apim-Subscription-Key: {k}");

    // Global, API and operation scopes, in base order; expressions read
    // the subscription and the method; a choose on a header.
    let r = fetch(&[
        "-H",
        &key("key-a"),
        "-H",
        "x-tier: gold",
        &gw.url("/shop/items/7?q=1"),
    ]);
    assert_eq!(r.status, 200, "{}", r.body);
    let echo = r.json();
    assert_eq!(echo["path"], "/v2/items/7", "{echo}");
    assert_eq!(echo["query"], "q=1");
    assert_eq!(echo["headers"]["x-global"], "edge-1");
    assert_eq!(echo["headers"]["x-sub"], "a/GET");
    assert_eq!(echo["headers"]["x-branch"], "gold");
    assert_eq!(r.header("x-api"), Some("shop"));

    // The choose's second when answers by itself.
    let r = fetch(&["-H", &key("key-b"), "-H", "x-n: 9", &gw.url("/shop/other")]);
    assert_eq!((r.status, r.body.as_str()), (418, "many"));
    assert_eq!(r.header("content-type"), Some("text/plain"));

    // rate-limit-by-key counts per String.Concat(subscription, "-x"):
    // the third call of a is refused, b has its own counter.
    let r = fetch(&["-H", &key("key-a"), &gw.url("/shop/other")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["headers"]["x-branch"], "standard");
    let r = fetch(&["-H", &key("key-a"), &gw.url("/shop/other")]);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.header("x-on-error"), Some("global"));
    let r = fetch(&["-H", &key("key-b"), &gw.url("/shop/other")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(backend.hits(), 3);
}

#[test]
fn a_failing_expression_answers_500_through_on_error() {
    let backend = TestBackend::echo();
    let gw = ApimGateway::start("apimxmlerr", &apis(&backend), &catalog());
    // int.Parse of text that is not a number fails while the request is
    // evaluated: never a pass to the backend.
    let r = fetch(&[
        "-H",
        "Ocp-Apim-Subscription-Key: key-a",
        "-H",
        "x-n: many",
        &gw.url("/shop/other"),
    ]);
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(r.header("x-on-error"), Some("global"));
    assert_eq!(backend.hits(), 0);
    let log = gw.gw.daemon.log_text();
    assert!(
        log.contains("choose") && log.contains("Expression evaluation failed"),
        "{log}"
    );
}

/// Documents with one problem each, and the line each is reported with.
fn bad_catalog() -> String {
    let malformed = "<policies>\n  <inbound>\n    <rate-limit calls=\"1\" renewal-period=\"1\">\n  </inbound>\n</policies>";
    let unknown = "<policies>\n  <inbound>\n    <base />\n    <rate-limt calls=\"1\" renewal-period=\"1\" />\n  </inbound>\n</policies>";
    let typed = "<policies>\n  <inbound>\n    <choose>\n      <when condition=\"@(context.Request.Method > 3)\" />\n    </choose>\n  </inbound>\n</policies>";
    format!(
        "policies: |\n{}apis:\n  - name: shop\n    policies: |\n{}\x20   operations:\n      - name: get-item\n        policies: |\n{}",
        block(malformed, 2),
        block(unknown, 6),
        block(typed, 10),
    )
}

/// The parts of each expected line.
const BAD_LINES: [&[&str]; 3] = [
    &[
        "global policies: policy XML line 4, column 3: malformed XML: expected 'rate-limit' tag, not 'inbound'",
    ],
    &[
        "api \"shop\": policy XML line 4, column 5: <rate-limt>: unknown policy element; edgegw runs: rate-limit,",
    ],
    &[
        "api \"shop\": operation \"get-item\": policy XML line 4, column 13: <when> attribute \"condition\": line 4, column 26: ",
        "`>` cannot compare string with int",
    ],
];

#[test]
fn bad_documents_are_refused_whole_with_their_lines() {
    let backend = TestBackend::echo();
    let tmp = TempDir::new("apimxmlbad");
    let cat = tmp.write("catalog.yaml", &bad_catalog());
    let cfg = tmp.write(
        "edgegw.toml",
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:{}\"\n[xdp]\nmode = \"off\"\n{}\n[catalog]\nfile = \"catalog.yaml\"\n",
            free_port(),
            apis(&backend)
        ),
    );
    let out = edgegw(&[
        "catalog",
        "validate",
        cat.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for want in BAD_LINES {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("catalog.yaml: {}", want[0]))
                    && want.iter().all(|w| l.contains(w))),
            "{want:?}\n{err}"
        );
    }
    assert!(err.contains("3 problem(s)"), "{err}");
    let out = edgegw(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("edgegw ready"));

    // At reload: rejected, the last good catalog keeps serving.
    let mut gw = ApimGateway::start("apimxmlhup", &apis(&backend), &catalog());
    let get = |gw: &ApimGateway| {
        fetch(&[
            "-H",
            "Ocp-Apim-Subscription-Key: key-b",
            &gw.url("/shop/items/1"),
        ])
    };
    assert_eq!(get(&gw).status, 200);
    std::fs::write(&gw.catalog, bad_catalog()).unwrap();
    gw.gw.daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !gw
        .gw
        .daemon
        .log_text()
        .contains("configuration reload rejected")
    {
        assert!(std::time::Instant::now() < deadline, "no reload rejection");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let log = gw.gw.daemon.log_text();
    assert!(log.contains("line 4, column 5: <rate-limt>"), "{log}");
    let r = get(&gw);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["headers"]["x-sub"], "b/GET");
    assert_eq!(gw.gw.daemon.stop(), Some(0));
}

const CP_API: &str = r#"<policies>
  <inbound>
    <base />
    <choose>
      <when condition='@(context.Request.Method == "GET")'>
        <return-response>
          <set-status code="200" reason="OK" />
          <set-body>served from xml</set-body>
        </return-response>
      </when>
    </choose>
  </inbound>
</policies>"#;

#[test]
fn xml_policies_put_to_the_control_plane_are_served_by_its_gateways() {
    let tmp = TempDir::new("apimxmlcp");
    let cp = ControlPlane::start(&tmp.0);
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/xml",
        json!({"name": "xml", "path": "/xml", "backend": "http://127.0.0.1:9",
               "subscription_required": false, "policies": CP_API}),
    );
    // The global policies as an XML body of their own.
    let put = cp.request(
        "PUT",
        "/v1/policies",
        Some(&cp.admin_token),
        &["Content-Type: application/xml"],
        Some(GLOBAL.replace("{{region}}", "cp").as_bytes()),
    );
    assert_eq!(put.status, 201, "{}", put.body);
    let token = register(&cp, "gw-xml", &["xml"], None);
    let mut node = ManagedNode::of("apimxmlnode", &cp, &token, "");
    node.start();
    node.wait_body("/xml/anything", "served from xml", 20);
    let r = fetch(&[&format!("http://127.0.0.1:{}/xml/a", node.port)]);
    assert_eq!(r.status, 200, "{}", r.body);

    // A bad document is refused whole (422, every problem with its line)
    // and nothing changes: the stored document and what the gateway runs.
    let bad = CP_API.replace("<base />", "<base />\n    <rate-limt calls=\"1\" />");
    let (status, answer) = cp.admin(
        "PUT",
        "/v1/apis/xml",
        Some(
            &json!({"name": "xml", "path": "/xml", "backend": "http://127.0.0.1:9",
                     "subscription_required": false, "policies": bad}),
        ),
    );
    assert_eq!(status, 422, "{answer}");
    let text = answer.to_string();
    assert!(
        text.contains(
            "api \\\"xml\\\": policy XML line 4, column 5: <rate-limt>: unknown policy element"
        ),
        "{text}"
    );
    let put = cp.request(
        "PUT",
        "/v1/policies",
        Some(&cp.admin_token),
        &["Content-Type: application/xml"],
        Some(b"<policies><inbound><base /></inbound>"),
    );
    assert_eq!(put.status, 422, "{}", put.body);
    assert!(
        put.body
            .contains("global policies: policy XML line 1, column"),
        "{}",
        put.body
    );
    let (_, stored) = cp.admin("GET", "/v1/apis/xml", None);
    assert_eq!(stored["policies"], CP_API);
    let (_, global) = cp.admin("GET", "/v1/policies", None);
    assert!(
        global.as_str().is_some_and(|g| g.contains("x-on-error")),
        "{global}"
    );
    let r = fetch(&[&format!("http://127.0.0.1:{}/xml/b", node.port)]);
    assert_eq!((r.status, r.body.as_str()), (200, "served from xml"));
    node.stop();
}

/// A backend that answers `status` to its first `failures` requests, then
/// 200; its port and request counter.
fn flaky_backend(
    failures: usize,
    status: &'static str,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
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
            let status = if n < failures { status } else { "200 OK" };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            );
        }
    });
    (port, hits)
}

const FLAKY: &str = r#"<policies>
  <inbound><base /></inbound>
  <backend>
    <retry condition="@(context.Response.StatusCode == 500)" count="3" interval="0">
      <forward-request timeout="5" />
    </retry>
  </backend>
  <outbound>
    <set-header name="x-status" exists-action="override">
      <value>@(context.Response.StatusCode.ToString() + " " + context.Request.Method)</value>
    </set-header>
  </outbound>
</policies>"#;

const LIMITED: &str = r#"<policies>
  <inbound>
    <rate-limit calls="1" renewal-period="600" />
  </inbound>
  <on-error>
    <choose>
      <when condition='@(context.LastError.Source == "rate-limit")'>
        <set-header name="x-error" exists-action="override">
          <value>@(context.LastError.Source + "/" + context.LastError.Reason + "/" + context.Response.StatusCode)</value>
        </set-header>
      </when>
      <otherwise>
        <set-header name="x-error" exists-action="override">
          <value>other</value>
        </set-header>
      </otherwise>
    </choose>
  </on-error>
</policies>"#;

#[test]
fn retry_conditions_and_on_error_read_the_response_and_last_error() {
    use std::sync::atomic::Ordering;
    // 500 is not among the statuses retried by default: only the
    // condition on context.Response.StatusCode resends.
    let (flaky, flaky_hits) = flaky_backend(2, "500 Internal Server Error");
    let (failing, failing_hits) = flaky_backend(100, "503 Service Unavailable");
    let apis = format!(
        "[[apis]]\nname = \"flaky\"\npath = \"/flaky\"\nbackend = \"http://127.0.0.1:{flaky}\"\n\
         [[apis]]\nname = \"failing\"\npath = \"/failing\"\nbackend = \"http://127.0.0.1:{failing}\"\n\
         [[apis]]\nname = \"limited\"\npath = \"/limited\"\nbackend = \"http://127.0.0.1:{flaky}\"\n"
    );
    let catalog = format!(
        "apis:\n  - name: flaky\n    subscription_required: false\n    policies: |\n{}\
         \x20 - name: failing\n    subscription_required: false\n    policies: |\n{}\
         \x20 - name: limited\n    subscription_required: false\n    policies: |\n{}",
        block(FLAKY, 6),
        block(FLAKY, 6),
        block(LIMITED, 6),
    );
    let gw = ApimGateway::start("apimxmlretry", &apis, &catalog);
    let r = fetch(&[&gw.url("/flaky/x")]);
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert_eq!(flaky_hits.load(Ordering::SeqCst), 3, "two 500s, then 200");
    assert_eq!(r.header("x-status"), Some("200 GET"));
    // The condition does not hold for 503: sent once.
    let r = fetch(&[&gw.url("/failing/x")]);
    assert_eq!(r.status, 503);
    assert_eq!(failing_hits.load(Ordering::SeqCst), 1);
    assert_eq!(r.header("x-status"), Some("503 GET"));

    // on-error's choose reads context.LastError.Source.
    assert_eq!(fetch(&[&gw.url("/limited/x")]).status, 200);
    let r = fetch(&[&gw.url("/limited/x")]);
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(
        r.header("x-error"),
        Some("rate-limit/RateLimitExceeded/429")
    );
}

const VARIABLES: &str = r#"<policies>
  <inbound>
    <set-variable name="tier" value='@(context.Request.Headers.GetValueOrDefault("x-tier", "basic"))' />
    <set-variable name="n" value='@(int.Parse(context.Request.Headers.GetValueOrDefault("x-n", "1")))' />
    <set-variable name="label" value="edge" />
    <set-header name="x-vars" exists-action="override">
      <value>@((string)context.Variables["label"] + "/" + context.Variables.GetValueOrDefault&lt;string&gt;("tier") + "/" + ((int)context.Variables["n"] * 2) + "/" + context.Variables.ContainsKey("none"))</value>
    </set-header>
  </inbound>
  <outbound>
    <set-variable name="status" value="@(context.Response.StatusCode)" />
    <set-header name="x-out" exists-action="override">
      <value>@(context.Variables.GetValueOrDefault&lt;string&gt;("tier", "") + "-" + (int)context.Variables["status"])</value>
    </set-header>
    <set-header name="x-fail" exists-action="override">
      <value>@(context.Request.Headers.GetValueOrDefault("x-break", "") == "yes" ? int.Parse("nope").ToString() : "fine")</value>
    </set-header>
  </outbound>
  <on-error>
    <set-header name="x-error" exists-action="override">
      <value>@(context.LastError.Source + "/" + context.LastError.Reason + "/" + context.Variables.GetValueOrDefault&lt;string&gt;("tier", ""))</value>
    </set-header>
  </on-error>
</policies>"#;

const RETRY_FAILS: &str = r#"<policies>
  <backend>
    <retry condition='@(int.Parse(context.Request.Headers.GetValueOrDefault("x-n", "x")) > context.Response.StatusCode)' count="2" interval="0">
      <forward-request timeout="5" />
    </retry>
  </backend>
  <on-error>
    <set-header name="x-error" exists-action="override">
      <value>@(context.LastError.Source + "/" + context.LastError.Reason)</value>
    </set-header>
  </on-error>
</policies>"#;

#[test]
fn variables_live_per_request_and_late_failures_run_on_error() {
    let backend = TestBackend::echo();
    let apis = format!(
        "[[apis]]\nname = \"vars\"\npath = \"/vars\"\nbackend = \"http://{0}\"\n\
         [[apis]]\nname = \"retrying\"\npath = \"/retrying\"\nbackend = \"http://{0}\"\n",
        backend.addr
    );
    let catalog = format!(
        "apis:\n  - name: vars\n    subscription_required: false\n    policies: |\n{}\
         \x20 - name: retrying\n    subscription_required: false\n    policies: |\n{}",
        block(VARIABLES, 6),
        block(RETRY_FAILS, 6),
    );
    let gw = ApimGateway::start("apimxmlvars", &apis, &catalog);
    // set-variable in inbound, read by inbound and outbound expressions
    // (GetValueOrDefault<T>, ContainsKey, indexer, casts).
    let r = fetch(&["-H", "x-tier: gold", "-H", "x-n: 4", &gw.url("/vars/a")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["headers"]["x-vars"], "edge/gold/8/False");
    assert_eq!(r.header("x-out"), Some("gold-200"));
    assert_eq!(r.header("x-fail"), Some("fine"));
    // Variables are per request: the next one starts without them.
    let r = fetch(&[&gw.url("/vars/b")]);
    assert_eq!(r.json()["headers"]["x-vars"], "edge/basic/2/False");
    assert_eq!(r.header("x-out"), Some("basic-200"));

    // An outbound expression that fails: on-error runs with
    // context.LastError filled (and the variables set so far).
    let r = fetch(&[
        "-H",
        "x-tier: gold",
        "-H",
        "x-break: yes",
        &gw.url("/vars/c"),
    ]);
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(
        r.header("x-error"),
        Some("set-header/ExpressionValueEvaluationFailure/gold")
    );
    assert_eq!(r.header("x-out"), None, "outbound stopped where it failed");

    // A failing retry condition in the backend section: on-error too,
    // the backend asked once.
    let before = backend.hits();
    let r = fetch(&[&gw.url("/retrying/x")]);
    assert_eq!(r.status, 500, "{}", r.body);
    assert_eq!(
        r.header("x-error"),
        Some("retry/ExpressionValueEvaluationFailure")
    );
    assert_eq!(backend.hits(), before + 1);
    let r = fetch(&["-H", "x-n: 1", &gw.url("/retrying/x")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let log = gw.gw.daemon.log_text();
    assert!(log.contains("Expression evaluation failed"), "{log}");
}
