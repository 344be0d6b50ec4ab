//! Protection of the process: header size and count, header read timeout,
//! body size, idle timeout, connection cap; malformed and ambiguous
//! requests (no smuggling). Each limit answers or closes, and is counted.

use std::{io::Write, net::TcpStream, time::Duration};

use edgegw_tests::{
    backends::TestBackend,
    gateway::{TestGateway, curl, curl_json, raw_exchange, read_until_close},
    process::free_port,
};

fn api(backend: &TestBackend) -> String {
    format!(
        "[[apis]]\nname = \"echo\"\npath = \"/\"\nbackend = \"http://{}\"\n",
        backend.addr
    )
}

/// The rejection counter for `reason`, once it reached `want` (or 10 s).
fn rejections(gw: &TestGateway, reason: &str, want: f64) -> f64 {
    gw.wait_metric(
        &format!("edgegw_rejections_total{{reason=\"{reason}\"}}"),
        want,
    )
}

#[test]
fn header_and_body_limits_answer_431_and_413() {
    let backend = TestBackend::echo();
    let gw = TestGateway::start(
        "lim",
        &format!(
            "[limits]\nmax_header_bytes = 8192\nmax_headers = 20\nmax_body_bytes = 1000\n{}",
            api(&backend)
        ),
    );
    // One header larger than the limit.
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    let (answer, closed) = raw_exchange(gw.port, big.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(closed);
    // Too many headers.
    let many: String = (0..30).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (answer, _) = raw_exchange(
        gw.port,
        format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(rejections(&gw, "header_too_large", 2.0), 2.0);
    // HTTP/2: the header list limit answers 431 on the stream.
    let big_header = format!("X-Big: {}", "a".repeat(10_000));
    let (status, _) = curl(&[
        "--http2-prior-knowledge",
        "-H",
        &big_header,
        "-o",
        "/dev/null",
        &gw.url("/h2"),
    ]);
    assert_eq!(status, 431);
    assert_eq!(backend.hits(), 0);

    // Body over the limit, announced by Content-Length: refused up front.
    let body = gw.tmp.write("body", &"b".repeat(2000));
    let data = format!("@{}", body.display());
    let (status, json) = curl_json(&["--data-binary", &data, &gw.url("/up")]);
    assert_eq!(status, 413);
    assert_eq!(json["statusCode"], 413);
    assert_eq!(
        backend.hits(),
        0,
        "a refused body must not reach the backend"
    );
    // Chunked body over the limit: cut while streaming.
    let (status, json) = curl_json(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &data,
        &gw.url("/up"),
    ]);
    assert_eq!(status, 413, "{json}");
    // Under the limit passes.
    let small = gw.tmp.write("small", &"s".repeat(900));
    let (status, json) = curl_json(&[
        "--data-binary",
        &format!("@{}", small.display()),
        &gw.url("/up"),
    ]);
    assert_eq!((status, json["body_bytes"].as_u64()), (200, Some(900)));
    assert_eq!(rejections(&gw, "body_too_large", 2.0), 2.0);
}

#[test]
fn the_default_header_count_limit_is_100() {
    // The default is hyper's own limit (see `server::builder`), checked
    // at the boundary through the real binary. The backend is a closed
    // port: a request the gateway accepts gets its 502, one it refuses
    // its 431.
    let gw = TestGateway::start(
        "hdrs",
        &format!(
            "[[apis]]\nname = \"dead\"\npath = \"/\"\nbackend = \"http://127.0.0.1:{}\"\n",
            free_port()
        ),
    );
    let request = |extra: usize| {
        let headers: String = (0..extra).map(|i| format!("X-H{i}: v\r\n")).collect();
        let head = format!("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n");
        raw_exchange(gw.port, head.as_bytes()).0
    };
    // Host and Connection count too.
    let answer = request(98);
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    let answer = request(99);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(rejections(&gw, "header_too_large", 1.0), 1.0);
}

#[test]
fn slow_headers_time_out_and_idle_connections_close() {
    let backend = TestBackend::echo();
    let gw = TestGateway::start(
        "slow",
        &format!("[limits]\nheader_read_timeout_ms = 500\n{}", api(&backend)),
    );
    // Slowloris: a request head that never ends.
    let (_, closed) = raw_exchange(gw.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n");
    assert!(closed, "an incomplete request head must be cut");
    assert_eq!(rejections(&gw, "header_read_timeout", 1.0), 1.0);
    assert_eq!(backend.hits(), 0);

    let backend = TestBackend::echo();
    let gw = TestGateway::start(
        "idle",
        &format!("[limits]\nidle_timeout_secs = 1\n{}", api(&backend)),
    );
    let mut stream = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (answer, closed) = read_until_close(&mut stream);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(closed, "an idle keep-alive connection must be closed");
    assert_eq!(rejections(&gw, "idle_timeout", 1.0), 1.0);
}

#[test]
fn connections_over_the_cap_are_closed_and_counted() {
    let backend = TestBackend::echo();
    let gw = TestGateway::start(
        "cap",
        &format!("[limits]\nmax_connections = 3\n{}", api(&backend)),
    );
    // The readiness probe's connection must be gone before counting.
    assert_eq!(gw.wait_metric("edgegw_active_connections", 0.0), 0.0);
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", gw.port)).unwrap())
        .collect();
    assert_eq!(gw.wait_metric("edgegw_active_connections", 3.0), 3.0);
    let (answer, closed) = raw_exchange(gw.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(closed && answer.is_empty(), "{answer}");
    assert_eq!(rejections(&gw, "max_connections", 1.0), 1.0);
    drop(held);
    assert_eq!(gw.wait_metric("edgegw_active_connections", 0.0), 0.0);
    let (status, _) = curl(&["-o", "/dev/null", &gw.url("/ok")]);
    assert_eq!(status, 200);
}

#[test]
fn malformed_and_ambiguous_requests_never_reach_the_backend() {
    let backend = TestBackend::echo();
    let gw = TestGateway::start("bad", &api(&backend));
    let bad: [&[u8]; 7] = [
        b"GARBAGE\r\n\r\n",
        // httparse takes this target, `http` refuses it: the lean server
        // must hand the whole head to hyper.
        b"GET /a<b HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Ctl: a\x01b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello",
    ];
    for request in bad {
        let (answer, closed) = raw_exchange(gw.port, request);
        assert!(
            answer.starts_with("HTTP/1.1 400") && closed,
            "{:?} -> {answer:?}",
            String::from_utf8_lossy(request)
        );
    }
    assert_eq!(backend.hits(), 0);
    let n = bad.len() as f64;
    assert_eq!(rejections(&gw, "bad_request", n), n);

    // Content-Length and Transfer-Encoding together: chunked wins, the
    // length is dropped, and the connection closes after the answer, so
    // the "smuggled" request after the chunked body is never served.
    let (answer, closed) = raw_exchange(
        gw.port,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(closed);
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    assert!(!answer.contains("smuggled"), "{answer}");
    assert_eq!(backend.hits(), 1);

    // HTTP/2 protocol error: a frame before the preface completes.
    let (_, closed) = raw_exchange(
        gw.port,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x09\x00\x00\x00\x00\x01garbage!",
    );
    assert!(closed, "a broken HTTP/2 connection must be closed");
    // The process is unharmed.
    let (status, _) = curl(&["-o", "/dev/null", &gw.url("/still-up")]);
    assert_eq!(status, 200);
    assert_eq!(gw.wait_metric("edgegw_active_connections", 0.0), 0.0);
}
