//! Routing, forwarding headers, errors and the access log, end to end:
//! the real `edgegw` binary between curl and a real backend.

use edgegw_tests::{
    backends::TestBackend,
    gateway::{TestGateway, curl, curl_json},
    process::free_port,
};

fn routing_config(backend: &TestBackend) -> String {
    let b = backend.addr;
    format!(
        r#"
[[apis]]
name = "orders"
path = "/orders"
backend = "http://{b}/svc"
[[apis.operations]]
name = "get-order"
method = "GET"
url = "/{{id}}"
[[apis.operations]]
name = "latest-order"
method = "GET"
url = "/latest"
[[apis.operations]]
name = "order-anything"
method = "*"
url = "/*"
[[apis]]
name = "orders-shop"
path = "/orders"
host = "shop.example"
backend = "http://{b}/shop"
[[apis]]
name = "users"
path = "/users"
backend = "http://{b}"
[[apis.operations]]
name = "get-user"
method = "GET"
url = "/{{id}}"
"#
    )
}

#[test]
fn most_specific_route_wins_and_headers_are_forwarded() {
    let backend = TestBackend::echo();
    let gw = TestGateway::start("route", &routing_config(&backend));

    // Template parameter, prefix rewritten onto the backend base path.
    let (status, body) = curl_json(&[&gw.url("/orders/42?x=1")]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "/svc/42");
    assert_eq!(body["query"], "x=1");
    let h = &body["headers"];
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(
        h["forwarded"],
        "for=127.0.0.1;proto=http;host=\"127.0.0.1\""
    );
    // A new trace is started when the client sends none.
    let traceparent = h["traceparent"].as_str().unwrap();
    assert!(
        traceparent.starts_with("00-") && traceparent.len() == 55,
        "{traceparent}"
    );

    // An incoming traceparent is continued (same trace id, new parent id).
    let (_, body) = curl_json(&[
        "-H",
        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        &gw.url("/orders/latest"),
    ]);
    let tp = body["headers"]["traceparent"].as_str().unwrap();
    assert!(
        tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{tp}"
    );
    assert!(!tp.contains("00f067aa0ba902b7"), "{tp}");

    // Hop-by-hop headers, including those named in Connection, stay here.
    let (_, body) = curl_json(&[
        "-H",
        "Connection: keep-alive, x-hop",
        "-H",
        "x-hop: secret",
        "-H",
        "x-end: kept",
        &gw.url("/orders/7"),
    ]);
    assert!(body["headers"].get("x-hop").is_none(), "{body}");
    assert_eq!(body["headers"]["x-end"], "kept");

    // Host-bound API beats the host-less one for the same prefix.
    let (_, body) = curl_json(&["-H", "Host: shop.example", &gw.url("/orders/1")]);
    assert_eq!(body["path"], "/shop/1");

    // The access log names the API and operation the router picked.
    let lines = gw.wait_access_log(4);
    let ops: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["edgegw.api"].as_str().unwrap_or("-"),
                l["edgegw.operation"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        ops,
        vec![
            ("orders", "get-order"),
            ("orders", "latest-order"),
            ("orders", "get-order"),
            ("orders-shop", "-"),
        ]
    );
    assert_eq!(lines[1]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    for l in &lines {
        for field in [
            "time",
            "client.address",
            "http.request.method",
            "url.path",
            "http.response.status_code",
            "http.request.body.size",
            "http.response.body.size",
            "edgegw.duration_ms",
            "edgegw.backend.duration_ms",
            "trace_id",
        ] {
            assert!(!l[field].is_null(), "{field} missing in {l}");
        }
        assert!(l["http.response.body.size"].as_u64().unwrap() > 0, "{l}");
    }
}

#[test]
fn operation_precedence_literal_over_param_over_catch_all() {
    let backend = TestBackend::echo();
    let gw = TestGateway::start("prec", &routing_config(&backend));
    for (i, (method, path, want)) in [
        ("GET", "/orders/latest", "latest-order"),
        ("GET", "/orders/9", "get-order"),
        ("POST", "/orders/9", "order-anything"),
        ("GET", "/orders/9/items/3", "order-anything"),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, _) = curl(&["-X", method, "-o", "/dev/null", &gw.url(path)]);
        assert_eq!(status, 200, "{method} {path}");
        let lines = gw.wait_access_log(i + 1);
        assert_eq!(lines.len(), i + 1);
        let last = lines.last().unwrap();
        assert_eq!(last["edgegw.operation"], want, "{method} {path}: {last}");
    }
}

#[test]
fn unmatched_requests_get_404_json_and_never_reach_the_backend() {
    let backend = TestBackend::echo();
    let gw = TestGateway::start("404", &routing_config(&backend));
    let (status, body) = curl_json(&[&gw.url("/nothing/here")]);
    assert_eq!(status, 404);
    assert_eq!(body["statusCode"], 404);
    assert!(
        body["message"].as_str().unwrap().contains("/nothing/here"),
        "{body}"
    );
    // API matches, no operation does (method or template).
    let (status, body) = curl_json(&["-X", "DELETE", &gw.url("/users/1")]);
    assert_eq!((status, body["statusCode"].as_u64()), (404, Some(404)));
    let (status, _) = curl_json(&[&gw.url("/users/1/extra")]);
    assert_eq!(status, 404);
    assert_eq!(backend.hits(), 0);
}

#[test]
fn backend_failures_are_502_and_504_with_json() {
    let slow = TestBackend::echo();
    let dead_port = free_port();
    let gw = TestGateway::start(
        "5xx",
        &format!(
            r#"
[[backends]]
name = "slow"
url = "http://{}"
response_timeout_ms = 300
[[apis]]
name = "slow"
path = "/slow"
backend = "slow"
[[apis]]
name = "dead"
path = "/dead"
backend = "http://127.0.0.1:{dead_port}"
"#,
            slow.addr
        ),
    );
    let (status, body) = curl_json(&[&gw.url("/dead/x")]);
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["statusCode"], 502);
    let (status, body) = curl_json(&[&gw.url("/slow/x?delay_ms=2000")]);
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["statusCode"], 504);
    // Within the timeout the same backend answers.
    let (status, _) = curl(&["-o", "/dev/null", &gw.url("/slow/x?delay_ms=10")]);
    assert_eq!(status, 200);
    let m = gw.metrics();
    let v = |s: &str| edgegw_tests::gateway::metric_value(&m, s);
    assert_eq!(
        v("edgegw_requests_total{api=\"dead\",operation=\"-\",status=\"5xx\"}"),
        1.0
    );
    assert_eq!(
        v("edgegw_requests_total{api=\"slow\",operation=\"-\",status=\"5xx\"}"),
        1.0
    );
    assert_eq!(
        v("edgegw_requests_total{api=\"slow\",operation=\"-\",status=\"2xx\"}"),
        1.0
    );
}
