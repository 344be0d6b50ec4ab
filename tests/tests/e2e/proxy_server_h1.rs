//! The lean HTTP/1.1 server, end to end through the real `edgegw` and raw
//! client sockets: requests on one connection are answered in order
//! whichever server takes them, the handoff to hyper in the middle of a
//! connection loses no byte, a request split over several writes is still
//! read whole, the head limit holds to the byte however the head arrives
//! (and after the handoff), and the listeners' backlog is the one
//! configured.

use std::{io::Write, net::TcpStream, thread::sleep, time::Duration};

use edgegw_tests::{
    backends::TestBackend,
    gateway::{TestGateway, raw_exchange, read_until_close},
};

fn api(backend: &TestBackend) -> String {
    format!(
        "[[apis]]\nname = \"echo\"\npath = \"/\"\nbackend = \"http://{}\"\n",
        backend.addr
    )
}

/// One response off the wire: status, lower-case headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// Splits a stream of responses; `heads` marks the answers to HEAD.
fn answers(mut wire: &str, heads: &[bool]) -> Vec<Answer> {
    let mut out = Vec::new();
    for &head in heads {
        let end = wire.find("\r\n\r\n").expect("a complete head");
        let mut lines = wire[..end].split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        wire = &wire[end + 4..];
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse::<usize>().unwrap());
        let body = match length {
            _ if head => String::new(),
            Some(n) => {
                let (body, rest) = wire.split_at(n);
                wire = rest;
                body.to_string()
            }
            None => panic!("the test backend's answers have a length"),
        };
        out.push(Answer {
            status,
            headers,
            body,
        });
    }
    assert!(wire.is_empty(), "nothing after the last answer: {wire:?}");
    out
}

#[test]
fn pipelined_requests_are_answered_in_order_across_the_handoff_to_hyper() {
    let backend = TestBackend::echo();
    let gw = TestGateway::start("lean", &api(&backend));
    let requests = concat!(
        "GET /one?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
        "HEAD /two HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /three HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        // A chunked body: hyper serves the connection from here on.
        "POST /four HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "GET /five HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let (wire, closed) = raw_exchange(gw.port, requests.as_bytes());
    assert!(closed, "Connection: close is honoured");
    let all = answers(&wire, &[false, true, false, false, false]);
    assert!(all.iter().all(|a| a.status == 200), "{wire}");
    let one = all[0].json();
    assert_eq!(
        (one["path"].as_str(), one["query"].as_str()),
        (Some("/one"), Some("x=1"))
    );
    assert!(all[0].header("date").is_some(), "every answer is dated");
    assert!(all[0].header("x-request-id").is_some());
    assert!(all[1].body.is_empty() && all[1].header("content-length").is_some());
    let three = all[2].json();
    assert_eq!(
        (three["method"].as_str(), three["body_bytes"].as_u64()),
        (Some("POST"), Some(5))
    );
    assert_eq!(all[3].json()["body_bytes"], 3);
    assert_eq!(all[4].json()["path"], "/five");
    assert_eq!(all[4].header("connection"), Some("close"));
    assert_eq!(backend.hits(), 5);
}

#[test]
fn a_request_split_over_several_writes_is_read_whole() {
    let backend = TestBackend::echo();
    let gw = TestGateway::start("split", &api(&backend));
    let mut stream = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    for piece in [
        &b"POST /split HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Le"[..],
        b"ngth: 4\r\n\r\nab",
        b"cd",
    ] {
        stream.write_all(piece).unwrap();
        sleep(Duration::from_millis(100));
    }
    let (wire, closed) = read_until_close(&mut stream);
    assert!(closed);
    let answer = &answers(&wire, &[false])[0];
    assert_eq!(answer.status, 200, "{wire}");
    assert_eq!(answer.json()["body_bytes"], 4);
}

/// A `GET /limit` head of exactly `len` bytes, asking to close.
fn head_of(len: usize) -> Vec<u8> {
    let start = b"GET /limit HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Pad: ";
    let end = b"\r\n\r\n";
    let mut raw = start.to_vec();
    raw.resize(len - end.len(), b'p');
    raw.extend_from_slice(end);
    raw
}

/// The status of the answer to `pieces`, written with a pause between;
/// once the gateway answers (a head over the limit need not be whole),
/// the rest is not sent.
fn status_of(port: u16, pieces: &[&[u8]]) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for piece in pieces {
        stream.write_all(piece).unwrap();
        // The pause: an answer (or a close) already there ends the writes.
        stream
            .set_read_timeout(Some(Duration::from_millis(30)))
            .unwrap();
        if stream.peek(&mut [0]).is_ok() {
            break;
        }
    }
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let (wire, _) = read_until_close(&mut stream);
    wire.get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no answer: {wire:?}"))
}

#[test]
fn the_head_limit_is_exact_whatever_the_reads() {
    const LIMIT: usize = 8192;
    let backend = TestBackend::echo();
    let gw = TestGateway::start(
        "head-limit",
        &format!("[limits]\nmax_header_bytes = {LIMIT}\n{}", api(&backend)),
    );
    for (len, want) in [
        (LIMIT - 1, 200),
        (LIMIT, 200),
        (LIMIT + 1, 431),
        (LIMIT + 4000, 431),
        (2 * LIMIT - 1, 431),
    ] {
        let raw = head_of(len);
        for split in [
            None,
            Some(1),
            Some(100),
            Some(4096),
            Some(LIMIT - 1),
            Some(len - 2),
        ] {
            let status = match split {
                None => status_of(gw.port, &[&raw]),
                Some(at) => {
                    let (a, b) = raw.split_at(at);
                    status_of(gw.port, &[a, b])
                }
            };
            assert_eq!(status, want, "a head of {len} bytes, split at {split:?}");
        }
        // The same on a connection hyper serves (after a chunked body).
        let mut handed =
            b"POST /first HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_vec();
        handed.extend_from_slice(&raw);
        let (wire, _) = raw_exchange(gw.port, &handed);
        let statuses: Vec<&str> = wire
            .match_indices("HTTP/1.1 ")
            .map(|(i, _)| &wire[i + 9..i + 12])
            .collect();
        assert_eq!(
            statuses,
            ["200", &want.to_string()],
            "a head of {len} bytes after a handoff to hyper"
        );
    }
}

/// The Send-Q `ss` shows for the listener on `port`: its backlog.
fn listen_backlog(port: u16) -> u32 {
    let out = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{port}")])
        .output()
        .expect("running ss (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no listener on {port}: {text}"));
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn the_listen_backlog_is_configurable_and_defaults_to_somaxconn() {
    let backend = TestBackend::echo();
    let configured = TestGateway::start(
        "backlog",
        &format!("[limits]\nlisten_backlog = 77\n{}", api(&backend)),
    );
    assert_eq!(listen_backlog(configured.port), 77);
    let default = TestGateway::start("backlog-default", &api(&backend));
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(listen_backlog(default.port), somaxconn);
}
