use hyper::header::{HeaderName, HeaderValue};

use super::*;
use crate::{
    config::Config,
    proxy::{Router, router::NoRoute},
};

fn request(version: Version, method: &str, target: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut req = Request::new(());
    *req.version_mut() = version;
    *req.method_mut() = Method::from_bytes(method.as_bytes()).unwrap();
    *req.uri_mut() = target.parse().unwrap();
    for (n, v) in headers {
        req.headers_mut().append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    req
}

/// The host `before_routing` found, or why it refused.
fn check(
    version: Version,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Result<Option<String>, &'static str> {
    let mut req = request(version, method, target, headers);
    let uri = req.uri().clone();
    before_routing(&mut req, &uri, Underscores::Drop, |_| false)
        .map(|c| c.host)
        .map_err(|r| r.message)
}

#[test]
fn host_rules_by_version() {
    use Version as V;
    let some = |h: &str| Ok(Some(h.to_string()));
    /// Version, target, headers, and the host found or the refusal.
    type Case<'a> = (
        V,
        &'a str,
        &'a [(&'a str, &'a str)],
        Result<Option<String>, &'a str>,
    );
    let cases: [Case; 19] = [
        (
            V::HTTP_11,
            "/",
            &[("host", "Api.Example:8080")],
            some("api.example"),
        ),
        (V::HTTP_11, "/", &[("host", "[::1]:8080")], some("[::1]")),
        (V::HTTP_11, "/", &[], Err("missing Host header")),
        (
            V::HTTP_11,
            "/",
            &[("host", "a"), ("host", "a")],
            Err("duplicate Host header"),
        ),
        (
            V::HTTP_11,
            "/",
            &[("host", "a b/c")],
            Err("invalid Host header"),
        ),
        (V::HTTP_11, "/", &[("host", "")], Err("invalid Host header")),
        (
            V::HTTP_11,
            "/",
            &[("host", "u@h")],
            Err("invalid Host header"),
        ),
        // Absolute form: the target's authority wins, Host still required.
        (
            V::HTTP_11,
            "http://b.example/x",
            &[("host", "a")],
            some("b.example"),
        ),
        (
            V::HTTP_11,
            "http://b.example/x",
            &[],
            Err("missing Host header"),
        ),
        (
            V::HTTP_11,
            "http://u@b.example/x",
            &[("host", "a")],
            Err("invalid authority in request target"),
        ),
        (
            V::HTTP_11,
            "ftp://b.example/x",
            &[("host", "a")],
            Err("invalid authority in request target"),
        ),
        // HTTP/1.0 may go without.
        (V::HTTP_10, "/", &[], Ok(None)),
        (
            V::HTTP_10,
            "/",
            &[("host", "a"), ("host", "b")],
            Err("duplicate Host header"),
        ),
        // HTTP/2: :authority, Host, or both agreeing.
        (V::HTTP_2, "https://h2.example/x", &[], some("h2.example")),
        (V::HTTP_2, "/x", &[("host", "h")], some("h")),
        (V::HTTP_2, "/x", &[], Err("missing Host header")),
        (
            V::HTTP_2,
            "https://H2.example/x",
            &[("host", "h2.EXAMPLE")],
            some("h2.example"),
        ),
        (
            V::HTTP_2,
            "https://h2.example/x",
            &[("host", "other")],
            Err("Host header disagrees with :authority"),
        ),
        (
            V::HTTP_2,
            "https://h2.example/x",
            &[("host", "a"), ("host", "a")],
            Err("duplicate Host header"),
        ),
    ];
    for (version, target, headers, want) in cases {
        assert_eq!(
            check(version, "GET", target, headers),
            want,
            "{version:?} {target} {headers:?}"
        );
    }
}

#[test]
fn underscore_headers_dropped_refused_or_allowed() {
    let headers = [
        ("host", "a"),
        ("transfer_encoding", "chunked"),
        ("x_a", "1"),
        ("x_a", "2"),
        ("x-b", "3"),
    ];
    let run = |rule| {
        let mut req = request(Version::HTTP_11, "GET", "/", &headers);
        let uri = req.uri().clone();
        let checked = before_routing(&mut req, &uri, rule, |_| false);
        let names: Vec<String> = req.headers().keys().map(|n| n.to_string()).collect();
        (checked.map(|c| c.dropped).map_err(|r| r.reason), names)
    };
    let (dropped, names) = run(Underscores::Drop);
    assert_eq!(dropped, Ok(3));
    assert_eq!(names, ["host", "x-b"]);
    assert_eq!(run(Underscores::Refuse).0, Err(Rejection::HeaderUnderscore));
    let (dropped, names) = run(Underscores::Allow);
    assert_eq!(dropped, Ok(0));
    assert_eq!(names.len(), 4);
}

const CONFIG: &str = r#"
    [gateway]
    listen = "127.0.0.1:1"
    [[apis]]
    name = "api"
    path = "/api"
    backend = "http://b:1"
    [[apis.operations]]
    name = "item"
    method = "GET"
    url = "/items/{id}"
    [[apis.operations]]
    name = "public"
    method = "GET"
    url = "/public/*"
    [[apis.operations]]
    name = "live"
    method = "GET"
    url = "/live"
    websocket = true
    [[apis.operations]]
    name = "trace"
    method = "TRACE"
    url = "/trace"
    [[apis]]
    name = "files"
    path = "/files/v1"
    backend = "http://b:1"
    encoded_slashes = "keep"
    websocket = true
    [[apis]]
    name = "other"
    path = "/other"
    backend = "http://b:1"
"#;

/// The whole decision for one request: Ok(canonical path) or the refusal.
fn decide(method: &str, target: &str, headers: &[(&str, &str)]) -> Result<String, Refusal> {
    let config = Config::parse("t.toml", CONFIG).unwrap();
    let router = Router::new(config.apis);
    let mut all = vec![("host", "gw")];
    all.extend_from_slice(headers);
    let mut req = request(Version::HTTP_11, method, target, &all);
    let uri = req.uri().clone();
    let checked = before_routing(&mut req, &uri, Underscores::Drop, |m| {
        router.names_method(m)
    })?;
    let route = match router.route(None, req.method(), &checked.path.path) {
        Ok(route) => route,
        Err(_) if unrouted(req.method()) => return Err(METHOD_NOT_ALLOWED),
        Err(NoRoute::Operation { api }) => {
            within_api(&checked, api)?;
            return Err(Refusal::bad_request("no route", Rejection::BadRequest));
        }
        Err(NoRoute::Api) => return Err(Refusal::bad_request("no route", Rejection::BadRequest)),
    };
    after_routing(&checked, &route, req.method())?;
    Ok(checked.path.path.into_owned())
}

#[test]
fn routes_on_the_canonical_path_and_refuses_what_escapes() {
    let no_route = Err(Refusal::bad_request("no route", Rejection::BadRequest));
    let reason = |r: Result<String, Refusal>| r.map_err(|r| (r.status.as_u16(), r.reason));
    for (target, want) in [
        ("/api/items/1", Ok("/api/items/1".to_string())),
        ("/api/public/x/../../items/%31", Ok("/api/items/1".into())),
        // Dot segments resolved before the operations are matched.
        ("/api/public/../admin", no_route.clone()),
        (
            "/other/../api/admin",
            Err(Refusal::bad_request(
                "path escapes the API root",
                Rejection::PathEscapesRoot,
            )),
        ),
        (
            "/api/public/..%2fadmin",
            Err(Refusal::bad_request(
                "encoded slash beside a dot segment in path",
                Rejection::PathEncodedSlash,
            )),
        ),
        (
            "/other/../api/items/1",
            Err(Refusal::bad_request(
                "path escapes the API root",
                Rejection::PathEscapesRoot,
            )),
        ),
        (
            "/api/items/a%2fb",
            Err(Refusal::bad_request(
                "encoded slash in path",
                Rejection::PathEncodedSlash,
            )),
        ),
        ("/files/v1/a%2fb", Ok("/files/v1/a%2Fb".into())),
        (
            "/files/v1/x/../../v1/y",
            Err(Refusal::bad_request(
                "path escapes the API root",
                Rejection::PathEscapesRoot,
            )),
        ),
    ] {
        assert_eq!(decide("GET", target, &[]), want, "{target}");
    }
    // CONNECT and TRACE only where an operation names them.
    assert_eq!(
        reason(decide("TRACE", "/api/trace", &[])),
        Ok("/api/trace".into())
    );
    for (method, target) in [
        ("TRACE", "/api/items/1"),
        ("TRACE", "/nothing"),
        ("CONNECT", "/api/items/1"),
    ] {
        assert_eq!(
            reason(decide(method, target, &[])),
            Err((405, Rejection::MethodNotAllowed)),
            "{method} {target}"
        );
    }
    // WebSocket where the operation or API allows it.
    let ws = [("connection", "upgrade"), ("upgrade", "websocket")];
    assert!(decide("GET", "/api/live", &ws).is_ok());
    assert!(decide("GET", "/files/v1/x", &ws).is_ok());
    assert_eq!(
        reason(decide("GET", "/api/items/1", &ws)),
        Err((403, Rejection::UpgradeNotAllowed))
    );
    assert_eq!(
        reason(decide("GET", "/other/x", &ws)),
        Err((403, Rejection::UpgradeNotAllowed))
    );
    // h2c is not an upgrade this proxy makes: the request goes on.
    let h2c = [
        ("connection", "Upgrade, HTTP2-Settings"),
        ("upgrade", "h2c"),
        ("http2-settings", "AAMAAABkAAQAAP__"),
    ];
    assert!(decide("GET", "/api/items/1", &h2c).is_ok());
}

#[test]
fn connect_in_authority_form_is_405() {
    let config = Config::parse("t.toml", CONFIG).unwrap();
    let router = Router::new(config.apis);
    let mut req = request(Version::HTTP_11, "CONNECT", "gw:443", &[("host", "gw:443")]);
    let uri = req.uri().clone();
    let refused = before_routing(&mut req, &uri, Underscores::Drop, |m| {
        router.names_method(m)
    });
    assert_eq!(
        refused.err().map(|r| r.status),
        Some(StatusCode::METHOD_NOT_ALLOWED)
    );
}
