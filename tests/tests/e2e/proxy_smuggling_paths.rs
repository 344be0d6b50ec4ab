//! Deciding what a request is before policy runs on it, end to end: the
//! real `edgegw` between raw clients (plain TCP, TLS, HTTP/2 with prior
//! knowledge) and a backend that records the exact bytes it receives.
//! For each case: the status and JSON message the client got, and what
//! reached the backend — nothing, or one request in canonical form.
//!
//! Cases: the dot-segment family (`..`, `%2e`, `..%2f`, `//../`, `%00`,
//! double encoding, backslashes, `..;`, across APIs), `Upgrade: h2c`, a
//! WebSocket upgrade where none is allowed, a backend's unasked 101,
//! CONNECT and TRACE, missing, duplicate and invalid Host, absolute-form
//! targets, and a header name with an underscore beside a Content-Length;
//! and a WebSocket upgrade, where allowed, only after the policies ran.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::TcpStream,
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use edgegw_tests::{
    apim::ApimGateway,
    backends::RawBackend,
    certs::TestCa,
    gateway::TestGateway,
    process::{TempDir, free_port},
};
use http_body_util::{BodyExt, Full};

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
/// A backend that switches to h2c whatever it is asked.
const SWITCHES: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";

/// How a case reaches the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Plain,
    Tls,
    H2,
}

/// One request and what must come of it.
struct Case {
    what: &'static str,
    method: &'static str,
    target: &'static str,
    /// Sent after `Host: gw.test` (HTTP/1.1; `:authority` on HTTP/2).
    headers: &'static [(&'static str, &'static str)],
    /// Replaces the Host line (HTTP/1.1 only): the Host cases.
    host_lines: Option<&'static str>,
    body: &'static str,
    status: u16,
    /// The JSON message of a refusal, and the reason it is counted under.
    refused: Option<(&'static str, &'static str)>,
    /// The backend's request: its target (the API's prefix taken off, as
    /// its backend URL has no path) and the client headers it keeps
    /// (`None`: nothing reaches the backend).
    forwarded: Option<(&'static str, &'static [(&'static str, &'static str)])>,
    /// Over HTTP/2 too (not the HTTP/1.1-only framings).
    h2: bool,
}

const fn refused(
    what: &'static str,
    method: &'static str,
    target: &'static str,
    status: u16,
    message: &'static str,
    reason: &'static str,
) -> Case {
    Case {
        what,
        method,
        target,
        headers: &[],
        host_lines: None,
        body: "",
        status,
        refused: Some((message, reason)),
        forwarded: None,
        h2: true,
    }
}

const fn not_found(what: &'static str, target: &'static str) -> Case {
    Case {
        what,
        method: "GET",
        target,
        headers: &[],
        host_lines: None,
        body: "",
        status: 404,
        refused: None,
        forwarded: None,
        h2: true,
    }
}

const fn forwarded(what: &'static str, target: &'static str, canonical: &'static str) -> Case {
    Case {
        what,
        method: "GET",
        target,
        headers: &[],
        host_lines: None,
        body: "",
        status: 200,
        refused: None,
        forwarded: Some((canonical, &[])),
        h2: true,
    }
}

const ESCAPES: &str = "path escapes the API root";

fn cases() -> Vec<Case> {
    vec![
        // The operations publish GET /items/{id} and GET /public/*.
        forwarded("plain", "/api/items/1", "/items/1"),
        not_found("dot-dot", "/api/public/../admin"),
        not_found("encoded dots", "/api/public/%2e%2e/admin"),
        not_found("upper-case encoded dots", "/api/public/%2E%2E/admin"),
        not_found("half-encoded dots", "/api/public/.%2e/admin"),
        not_found("merged slashes before dot-dot", "/api/public//../admin"),
        forwarded(
            "resolved inside the API",
            "/api/public/x/../../items/%31",
            "/items/1",
        ),
        forwarded(
            "unreserved decoded, others upper-cased",
            "/api/public/%7e%41/./a%3f",
            "/public/~A/a%3F",
        ),
        // Decoded once: `%252e` is the text `%2e`, not a dot.
        forwarded(
            "double encoding",
            "/api/public/%252e%252e/admin",
            "/public/%252e%252e/admin",
        ),
        refused(
            "encoded slash after dots",
            "GET",
            "/api/public/..%2fadmin",
            400,
            "encoded slash beside a dot segment in path",
            "path_encoded_slash",
        ),
        refused(
            "encoded slash",
            "GET",
            "/api/items/a%2Fb",
            400,
            "encoded slash in path",
            "path_encoded_slash",
        ),
        refused(
            "NUL",
            "GET",
            "/api/public/..%00/admin",
            400,
            "control character in path",
            "path_invalid",
        ),
        refused(
            "CR LF",
            "GET",
            "/api/public/x%0d%0aX-Injected:%201",
            400,
            "control character in path",
            "path_invalid",
        ),
        refused(
            "backslash",
            "GET",
            "/api/public/..\\admin",
            400,
            "backslash in path",
            "path_invalid",
        ),
        refused(
            "encoded backslash",
            "GET",
            "/api/public/..%5cadmin",
            400,
            "backslash in path",
            "path_invalid",
        ),
        refused(
            "servlet path parameter",
            "GET",
            "/api/public/..;/admin",
            400,
            "dot segment with parameters in path",
            "path_invalid",
        ),
        refused(
            "overlong UTF-8 dots",
            "GET",
            "/api/public/%c0%ae%c0%ae/admin",
            400,
            "path is not valid UTF-8 once decoded",
            "path_invalid",
        ),
        refused(
            "malformed escape",
            "GET",
            "/api/public/%u002e",
            400,
            "malformed percent-encoding in path",
            "path_invalid",
        ),
        refused(
            "above the root",
            "GET",
            "/../api/items/1",
            400,
            ESCAPES,
            "path_escapes_root",
        ),
        refused(
            "across APIs",
            "GET",
            "/other-api/../api/admin",
            400,
            ESCAPES,
            "path_escapes_root",
        ),
        refused(
            "across APIs to a published operation",
            "GET",
            "/other-api/../api/items/1",
            400,
            ESCAPES,
            "path_escapes_root",
        ),
        refused(
            "out of the API and back",
            "GET",
            "/api/%2e%2e/api/items/1",
            400,
            ESCAPES,
            "path_escapes_root",
        ),
        // Methods.
        refused(
            "TRACE",
            "TRACE",
            "/api/items/1",
            405,
            "method not allowed",
            "method_not_allowed",
        ),
        Case {
            h2: false,
            ..refused(
                "CONNECT with a path",
                "CONNECT",
                "/api/items/1",
                405,
                "method not allowed",
                "method_not_allowed",
            )
        },
        Case {
            h2: false,
            host_lines: Some("Host: 127.0.0.1:443\r\n"),
            ..refused(
                "CONNECT to an authority",
                "CONNECT",
                "127.0.0.1:443",
                405,
                "method not allowed",
                "method_not_allowed",
            )
        },
        // Upgrades.
        Case {
            what: "h2c upgrade: ignored, the request goes on as HTTP/1.1",
            headers: &[
                ("Connection", "Upgrade, HTTP2-Settings"),
                ("Upgrade", "h2c"),
                ("HTTP2-Settings", "AAMAAABkAAQAAP__"),
                ("X-Keep", "1"),
            ],
            forwarded: Some(("/items/1", &[("x-keep", "1")])),
            h2: false,
            ..forwarded("", "/api/items/1", "")
        },
        Case {
            headers: &[
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
                ("Sec-WebSocket-Version", "13"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
            h2: false,
            ..refused(
                "WebSocket where none is allowed",
                "GET",
                "/api/items/1",
                403,
                "WebSocket upgrade not allowed here",
                "upgrade_not_allowed",
            )
        },
        // Host.
        Case {
            host_lines: Some(""),
            h2: false,
            ..refused(
                "no Host",
                "GET",
                "/api/items/1",
                400,
                "missing Host header",
                "host_missing",
            )
        },
        Case {
            host_lines: Some("Host: gw.test\r\nHost: other.test\r\n"),
            ..refused(
                "two Host headers",
                "GET",
                "/api/items/1",
                400,
                "duplicate Host header",
                "host_duplicate",
            )
        },
        Case {
            host_lines: Some("Host: a b/c\r\n"),
            h2: false,
            ..refused(
                "invalid Host",
                "GET",
                "/api/items/1",
                400,
                "invalid Host header",
                "host_invalid",
            )
        },
        Case {
            host_lines: Some("Host: gw.test\r\n"),
            h2: false,
            ..refused(
                "user info in an absolute-form target",
                "GET",
                "http://user@gw.test/api/items/1",
                400,
                "invalid authority in request target",
                "host_invalid",
            )
        },
        // The target's authority wins over Host (X-Forwarded-Host shows it).
        Case {
            host_lines: Some("Host: other.test\r\n"),
            h2: false,
            ..forwarded("absolute form", "http://gw.test/api/items/1", "/items/1")
        },
        // Header names: `Transfer_Encoding` is never forwarded.
        Case {
            what: "underscore beside Content-Length",
            method: "POST",
            target: "/other-api/upload",
            headers: &[("X-Keep", "1"), ("Transfer_Encoding", "chunked")],
            body: "hello",
            forwarded: Some(("/upload", &[("x-keep", "1")])),
            ..forwarded("", "", "")
        },
    ]
}

/// The request's bytes on HTTP/1.1.
fn http1(case: &Case) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", case.method, case.target);
    out += case.host_lines.unwrap_or("Host: gw.test\r\n");
    for (n, v) in case.headers {
        out += &format!("{n}: {v}\r\n");
    }
    if !case.body.is_empty() {
        out += &format!("Content-Length: {}\r\n", case.body.len());
    }
    out += "\r\n";
    out += case.body;
    out.into_bytes()
}

/// What the backend must receive for `case`, its trace ids masked.
fn expected(case: &Case, backend: &RawBackend, proto: &str) -> Option<String> {
    let (target, kept) = case.forwarded?;
    let mut out = format!(
        "{} {target} HTTP/1.1\r\nhost: {}\r\n",
        case.method, backend.addr
    );
    for (n, v) in kept {
        out += &format!("{n}: {v}\r\n");
    }
    out += &format!(
        "x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: {proto}\r\nx-forwarded-host: gw.test\r\n\
         forwarded: for=127.0.0.1;proto={proto};host=\"gw.test\"\r\ntraceparent: {MASK}\r\n"
    );
    if !case.body.is_empty() {
        out += &format!("content-length: {}\r\n", case.body.len());
    }
    out += "\r\n";
    out += case.body;
    Some(out)
}

const MASK: &str = "00-<trace id>-<span id>-01";

/// The bytes a backend received, the hop's random trace ids masked.
fn masked(raw: &[u8]) -> String {
    let text = String::from_utf8(raw.to_vec()).unwrap();
    let Some(at) = text.find("traceparent: ") else {
        return text;
    };
    let start = at + "traceparent: ".len();
    let end = start + text[start..].find("\r\n").unwrap();
    let value = &text[start..end];
    let parts: Vec<&str> = value.split('-').collect();
    assert!(
        parts.len() == 4
            && parts[1].len() == 32
            && parts[2].len() == 16
            && (parts[1].to_string() + parts[2])
                .bytes()
                .all(|b| b.is_ascii_hexdigit()),
        "traceparent {value}"
    );
    format!("{}{MASK}{}", &text[..start], &text[end..])
}

/// One response read off an HTTP/1.1 stream: status and body (which has
/// a Content-Length: the gateway's answers and the backend's all do).
fn read_response(stream: &mut impl Read) -> (u16, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            other => panic!(
                "response head cut short ({other:?}): {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    }
    let head = String::from_utf8(buf).unwrap();
    let status = head[9..12].parse().unwrap();
    let length = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or_else(|| panic!("no content-length: {head}"));
    let mut body = vec![0; length];
    stream.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

fn tls_client(ca: &TestCa) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca.pem_path).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

/// Sends `raw` on a new HTTP/1.1 connection (plain or TLS) and reads one
/// answer.
fn exchange_http1(port: u16, tls: Option<&Arc<rustls::ClientConfig>>, raw: &[u8]) -> (u16, String) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    match tls {
        None => {
            let mut s = tcp;
            s.write_all(raw).unwrap();
            read_response(&mut s)
        }
        Some(config) => {
            let name = "gw.test".try_into().unwrap();
            let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
            let mut s = rustls::StreamOwned::new(conn, tcp);
            s.write_all(raw).unwrap();
            read_response(&mut s)
        }
    }
}

/// Sends `case` over a new HTTP/2 connection (prior knowledge).
fn exchange_h2(rt: &tokio::runtime::Runtime, port: u16, case: &Case) -> (u16, String) {
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(case.method)
            .uri(format!("http://gw.test{}", case.target));
        for (n, v) in case.headers {
            req = req.header(*n, *v);
        }
        // HTTP/2 has no Host line of its own: extra Host headers are sent
        // as fields beside `:authority`.
        if let Some(lines) = case.host_lines {
            for line in lines.split("\r\n").filter(|l| !l.is_empty()) {
                let (n, v) = line.split_once(": ").unwrap();
                req = req.header(n, v);
            }
        }
        let req = req
            .body(Full::new(Bytes::from_static(case.body.as_bytes())))
            .unwrap();
        let response = sender.send_request(req).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    })
}

#[test]
fn what_a_request_is_is_decided_before_routing_and_only_canonical_requests_reach_the_backend() {
    let backend = RawBackend::start(OK);
    let switching = RawBackend::start(SWITCHES);
    let certs = TempDir::new("smuggle-certs");
    let ca = TestCa::new(&certs.0);
    let leaf = ca.leaf(&certs.0, "gw", &["gw.test"]);
    let tls_port = free_port();
    let gw = TestGateway::start(
        "smuggle",
        &format!(
            r#"
[tls]
listen = "127.0.0.1:{tls_port}"
[[tls.certificates]]
cert = "{}"
key = "{}"
server_names = ["gw.test"]
[[apis]]
name = "api"
path = "/api"
backend = "http://{b}"
[[apis.operations]]
name = "item"
method = "GET"
url = "/items/{{id}}"
[[apis.operations]]
name = "public"
method = "GET"
url = "/public/*"
[[apis]]
name = "other-api"
path = "/other-api"
backend = "http://{b}"
[[apis]]
name = "switching"
path = "/switching"
backend = "http://{}"
websocket = true
"#,
            leaf.cert.display(),
            leaf.key.display(),
            switching.addr,
            b = backend.addr,
        ),
    );
    let tls = tls_client(&ca);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut counted: BTreeMap<&str, u32> = BTreeMap::new();
    let mut requests = 0;
    for via in [Via::Plain, Via::Tls, Via::H2] {
        for case in cases().iter().filter(|c| via != Via::H2 || c.h2) {
            let what = format!("{via:?} {}: {} {}", case.what, case.method, case.target);
            let (status, body) = match via {
                Via::Plain => exchange_http1(gw.port, None, &http1(case)),
                Via::Tls => exchange_http1(tls_port, Some(&tls), &http1(case)),
                Via::H2 => exchange_h2(&rt, gw.port, case),
            };
            requests += 1;
            assert_eq!(status, case.status, "{what}: {body}");
            if let Some((message, reason)) = case.refused {
                let json: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(json["message"], message, "{what}");
                assert_eq!(json["statusCode"], case.status, "{what}");
                *counted.entry(reason).or_default() += 1;
            }
            let proto = if via == Via::Tls { "https" } else { "http" };
            let seen: Vec<String> = backend.take().iter().map(|r| masked(r)).collect();
            match expected(case, &backend, proto) {
                Some(want) => assert_eq!(seen, [want], "{what}"),
                None => assert!(seen.is_empty(), "{what}: the backend saw {seen:?}"),
            }
        }
    }

    // A backend's 101 is never tunnelled unless the client asked for a
    // WebSocket where one is allowed, and the backend switched to it:
    // 502, and the next request on the same client connection is routed.
    for (what, extra) in [
        (
            "h2c asked",
            "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n",
        ),
        ("nothing asked", ""),
        (
            "WebSocket asked, h2c given",
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        ),
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(
            format!("GET /switching/x HTTP/1.1\r\nHost: gw.test\r\n{extra}\r\n").as_bytes(),
        )
        .unwrap();
        let (status, body) = read_response(&mut s);
        assert_eq!(status, 502, "{what}: {body}");
        assert_eq!(switching.take().len(), 1, "{what}");
        s.write_all(b"GET /api/admin HTTP/1.1\r\nHost: gw.test\r\n\r\n")
            .unwrap();
        let (status, body) = read_response(&mut s);
        assert_eq!(status, 404, "{what}: the next request was routed: {body}");
        assert!(
            switching.take().is_empty() && backend.take().is_empty(),
            "{what}"
        );
        requests += 2;
    }

    // A 405 lists what the path's operations allow.
    for (request, allow) in [
        ("TRACE /api/items/1", "allow: get"),
        ("CONNECT /api/public/x", "allow: get"),
        (
            "TRACE /other-api/x",
            "allow: delete, get, head, options, patch, post, put",
        ),
    ] {
        let raw = format!("{request} HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n");
        let (answer, _) = edgegw_tests::gateway::raw_exchange(gw.port, raw.as_bytes());
        let answer = answer.to_ascii_lowercase();
        assert!(answer.starts_with("http/1.1 405"), "{request}: {answer}");
        assert!(
            answer.contains(&format!("\r\n{allow}\r\n")),
            "{request}: {answer}"
        );
        *counted.entry("method_not_allowed").or_default() += 1;
        requests += 1;
    }
    assert!(backend.take().is_empty());

    for (reason, n) in &counted {
        let series = format!("edgegw_rejections_total{{reason=\"{reason}\"}}");
        assert_eq!(
            gw.wait_metric(&series, f64::from(*n)),
            f64::from(*n),
            "{series}"
        );
    }
    // Once per transport that can carry it.
    let underscores = 3.0;
    let series = "edgegw_request_headers_dropped_total{reason=\"underscore\"}";
    assert_eq!(gw.wait_metric(series, underscores), underscores);
    // Every request, refused or not, has its access-log line.
    let lines = gw.wait_access_log(requests);
    assert_eq!(lines.len(), requests);
    let refused = lines
        .iter()
        .filter(|l| {
            matches!(
                l["http.response.status_code"].as_u64(),
                Some(400 | 403 | 405)
            )
        })
        .count();
    assert_eq!(refused as u32, counted.values().sum::<u32>());
}

/// A WebSocket upgrade, even where allowed, comes after the policies: a
/// request without its subscription key is answered 401 and its upgrade
/// never reaches the backend; with a key the policies let through, it does.
#[test]
fn websocket_upgrades_come_after_the_policies() {
    let backend = RawBackend::start(OK);
    let apim = ApimGateway::start(
        "ws-policy",
        &format!(
            "[[apis]]\nname = \"live\"\npath = \"/live\"\nbackend = \"http://{}\"\nwebsocket = true\n",
            backend.addr
        ),
        &format!(
            "apis:\n  - name: live\nsubscriptions:\n  - id: s\n    scope: api:live\n    primary_key_sha256: {}\n",
            edgegw_tests::apim::hash_key("the-key")
        ),
    );
    let upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let raw = format!("GET /live/chat HTTP/1.1\r\nHost: gw.test\r\n{upgrade}\r\n");
    let (status, body) = exchange_http1(apim.gw.port, None, raw.as_bytes());
    assert_eq!(status, 401, "{body}");
    assert!(backend.take().is_empty());
    // The raw backend answers 200, not 101: the client gets that answer,
    // and the backend got the upgrade request.
    let raw = format!(
        "GET /live/chat HTTP/1.1\r\nHost: gw.test\r\nOcp-Apim-Subscription-Key: the-key\r\n{upgrade}\r\n"
    );
    let (status, body) = exchange_http1(apim.gw.port, None, raw.as_bytes());
    assert_eq!(status, 200, "{body}");
    let seen: Vec<String> = backend.take().iter().map(|r| masked(r)).collect();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].contains("\r\nupgrade: websocket\r\n")
            && seen[0].contains("\r\nconnection: upgrade\r\n"),
        "{}",
        seen[0]
    );
    assert!(
        !seen[0].contains("ocp-apim-subscription-key"),
        "{}",
        seen[0]
    );
}
