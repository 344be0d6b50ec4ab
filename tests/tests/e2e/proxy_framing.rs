//! Request framing through the real `edgegw`, as a smuggler tries it:
//! CL.TE, TE.CL and TE.TE variants, ambiguous `Content-Length`s,
//! malformed chunked bodies, over plain TCP and TLS. A raw TCP backend
//! records exactly the bytes it receives; for each case the test checks
//! the status the client got and those bytes: nothing, or one request
//! whose framing leaves no doubt (the gateway writes its own), and never a
//! second request hidden in the first one's body. A backend connection
//! that got part of a request is closed, never reused.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use edgegw_tests::{
    certs::TestCa,
    gateway::{TestGateway, read_until_close},
    process::{TempDir, free_port},
};

/// One backend connection as the recorder saw it.
#[derive(Clone, Default)]
struct ConnLog {
    bytes: Vec<u8>,
    closed: bool,
}

/// A backend that records every byte on every connection and answers
/// each complete request it can parse with `200 ok`.
struct Recorder {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<ConnLog>>>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(Mutex::new(Vec::new()));
        let log = conns.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let id = {
                    let mut conns = log.lock().unwrap();
                    conns.push(ConnLog::default());
                    conns.len() - 1
                };
                let log = log.clone();
                thread::spawn(move || record(stream, id, &log));
            }
        });
        Recorder { addr, conns }
    }

    fn snapshot(&self) -> Vec<ConnLog> {
        self.conns.lock().unwrap().clone()
    }

    /// What arrived since `before`: per connection that got bytes or
    /// closed, its new bytes and whether it is closed. Waits (up to 5 s)
    /// for connections holding an incomplete request to close, which the
    /// gateway does just before it answers.
    fn since(&self, before: &[ConnLog]) -> Vec<(Vec<u8>, bool)> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = self.snapshot();
            let new: Vec<(Vec<u8>, bool)> = now
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    let old = before.get(i).cloned().unwrap_or_default();
                    let bytes = c.bytes[old.bytes.len()..].to_vec();
                    (!bytes.is_empty() || c.closed != old.closed).then_some((bytes, c.closed))
                })
                .collect();
            let settled = new
                .iter()
                .all(|(bytes, closed)| *closed || requests(bytes).1.is_empty());
            if settled || Instant::now() > deadline {
                return new;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn record(mut stream: TcpStream, id: usize, log: &Mutex<Vec<ConnLog>>) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        log.lock().unwrap()[id].bytes.extend_from_slice(&buf[..n]);
        pending.extend_from_slice(&buf[..n]);
        let (whole, rest) = requests(&pending);
        for _ in whole {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
        pending = rest.to_vec();
    }
    log.lock().unwrap()[id].closed = true;
}

/// A request the gateway wrote, cut from the bytes: its exact bytes.
type Raw = Vec<u8>;

/// The complete requests at the start of `bytes` and what follows them.
/// The gateway frames bodies with `content-length` or `transfer-encoding:
/// chunked`, in lower case.
fn requests(mut bytes: &[u8]) -> (Vec<Raw>, &[u8]) {
    let mut out = Vec::new();
    while let Some(len) = request_len(bytes) {
        out.push(bytes[..len].to_vec());
        bytes = &bytes[len..];
    }
    (out, bytes)
}

fn request_len(bytes: &[u8]) -> Option<usize> {
    let head = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = std::str::from_utf8(&bytes[..head]).ok()?;
    let header = |name: &str| {
        text.split("\r\n")
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
    };
    if header("transfer-encoding") == Some("chunked") {
        let mut at = head;
        loop {
            let line = bytes[at..].windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&bytes[at..at + line]).ok()?, 16).ok()?;
            at += line + 2;
            if size == 0 {
                // No trailers from the gateway.
                return (bytes.get(at..at + 2)? == b"\r\n").then_some(at + 2);
            }
            at += size + 2;
            bytes.get(..at)?;
        }
    }
    let length: usize = header("content-length").map_or(Some(0), |v| v.parse().ok())?;
    (bytes.len() >= head + length).then_some(head + length)
}

/// `bytes` with the varying value of the gateway's `traceparent` masked.
fn masked(bytes: &[u8]) -> Vec<u8> {
    let Some(head) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return bytes.to_vec();
    };
    let mut out: Vec<u8> = String::from_utf8_lossy(&bytes[..head + 4])
        .split_inclusive("\r\n")
        .map(|line| match line.split_once(": ") {
            Some(("traceparent", _)) => "traceparent: *\r\n",
            _ => line,
        })
        .collect::<String>()
        .into_bytes();
    out.extend_from_slice(&bytes[head + 4..]);
    out
}

/// What the backend must receive for a case.
#[derive(Clone, Copy, Debug)]
enum Forward {
    /// No complete request (a connection that got part of one is closed).
    Nothing,
    /// One request with this body, framed by `content-length`.
    Length(&'static [u8]),
    /// One request with these chunks, re-framed by the gateway.
    Chunked(&'static [&'static [u8]]),
}

/// One case: the bytes a client sends (`pause`: split in two writes at
/// this index, the second after a pause) and what must follow.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    pause: Option<usize>,
    status: u16,
    forward: Forward,
    /// The gateway itself must close the connection after its answer.
    closes: bool,
}

/// `POST /<name>` with `headers` (each ending in CRLF) and `body`; the
/// client asks to close after the answer.
fn case(name: &'static str, headers: &str, body: &str, status: u16, forward: Forward) -> Case {
    Case {
        name,
        request: format!(
            "POST /{name} HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n{headers}\r\n{body}"
        )
        .into_bytes(),
        pause: None,
        status,
        forward,
        closes: false,
    }
}

/// How the client reaches the gateway.
enum Client<'a> {
    Plain(u16),
    Tls { port: u16, ca: &'a std::path::Path },
}

impl Client<'_> {
    /// Sends `request` (in two writes around `pause`), returns all the
    /// gateway wrote and whether it closed the connection.
    fn exchange(&self, request: &[u8], pause: Option<usize>) -> (String, bool) {
        let (first, second) = request.split_at(pause.unwrap_or(request.len()));
        match self {
            Client::Plain(port) => {
                let mut stream = TcpStream::connect(("127.0.0.1", *port)).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                stream.write_all(first).unwrap();
                if !second.is_empty() {
                    thread::sleep(Duration::from_millis(200));
                    let _ = stream.write_all(second);
                }
                read_until_close(&mut stream)
            }
            Client::Tls { port, ca } => tls_exchange(*port, ca, first, second),
        }
    }
}

fn tls_exchange(port: u16, ca: &std::path::Path, first: &[u8], second: &[u8]) -> (String, bool) {
    use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = ServerName::try_from("gw.test").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(first).unwrap();
    tls.flush().unwrap();
    if !second.is_empty() {
        thread::sleep(Duration::from_millis(200));
        let _ = tls.write_all(second);
        let _ = tls.flush();
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match tls.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
            // A peer that closes without close_notify.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break true,
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// Runs `cases` through `client` (`proto`: "http" or "https") and checks
/// each: the client's status, and the exact bytes the backend received.
/// Returns the answers.
fn run(backend: &Recorder, client: &Client<'_>, proto: &str, cases: &[Case]) -> Vec<String> {
    let mut answers = Vec::new();
    for c in cases {
        let before = backend.snapshot();
        let (answer, closed) = client.exchange(&c.request, c.pause);
        assert!(
            closed || !c.closes,
            "{}: the gateway closes the connection",
            c.name
        );
        let status: u16 = answer
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{}: no answer: {answer:?}", c.name));
        assert_eq!(status, c.status, "{}: {answer}", c.name);
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "{}: one answer, nothing smuggled: {answer}",
            c.name
        );
        let got = backend.since(&before);
        answers.push(answer);
        let shown = |got: &[(Vec<u8>, bool)]| {
            got.iter()
                .map(|(b, closed)| format!("{:?} closed={closed}", String::from_utf8_lossy(b)))
                .collect::<Vec<_>>()
        };
        let complete: Vec<Raw> = got.iter().flat_map(|(b, _)| requests(b).0).collect();
        let (framing, wire): (String, Vec<u8>) = match c.forward {
            Forward::Nothing => {
                assert!(
                    complete.is_empty(),
                    "{}: no complete request reaches the backend: {:?}",
                    c.name,
                    shown(&got)
                );
                assert!(
                    got.iter().all(|(_, closed)| *closed),
                    "{}: a backend connection that got part of a request is closed: {:?}",
                    c.name,
                    shown(&got)
                );
                continue;
            }
            Forward::Length(body) => (format!("content-length: {}", body.len()), body.to_vec()),
            Forward::Chunked(chunks) => {
                let mut wire = Vec::new();
                for chunk in chunks {
                    wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    wire.extend_from_slice(chunk);
                    wire.extend_from_slice(b"\r\n");
                }
                wire.extend_from_slice(b"0\r\n\r\n");
                ("transfer-encoding: chunked".into(), wire)
            }
        };
        let [(bytes, _)] = &got[..] else {
            panic!("{}: one backend connection used: {:?}", c.name, shown(&got));
        };
        let mut expected = format!(
            "POST /{} HTTP/1.1\r\nhost: {}\r\nx-forwarded-for: 127.0.0.1\r\n\
             x-forwarded-proto: {proto}\r\nx-forwarded-host: gw.test\r\n\
             forwarded: for=127.0.0.1;proto={proto};host=\"gw.test\"\r\n\
             traceparent: *\r\n{framing}\r\n\r\n",
            c.name, backend.addr
        )
        .into_bytes();
        expected.extend_from_slice(&wire);
        assert_eq!(
            String::from_utf8_lossy(&masked(bytes)),
            String::from_utf8_lossy(&expected),
            "{}: exactly one request, framed by the gateway",
            c.name
        );
    }
    answers
}

fn config(backend: &Recorder) -> String {
    format!(
        "[[apis]]\nname = \"framing\"\npath = \"/\"\nbackend = \"http://{}\"\n",
        backend.addr
    )
}

const TE: &str = "Transfer-Encoding: chunked\r\n";
const HELLO: &str = "5\r\nhello\r\n0\r\n\r\n";

/// Well-framed bodies: forwarded, framed by the gateway.
fn valid() -> Vec<Case> {
    use Forward::*;
    vec![
        case(
            "cl",
            "Content-Length: 5\r\n",
            "hello",
            200,
            Length(b"hello"),
        ),
        case("chunked", TE, HELLO, 200, Chunked(&[b"hello"])),
        case(
            "chunked-two",
            TE,
            "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            200,
            Chunked(&[b"hello", b" world"]),
        ),
        // Extensions and trailers are the client's hop's: not forwarded.
        case(
            "chunked-ext",
            TE,
            "5;a=b;c=\"d\"\r\nhello\r\n0;z\r\n\r\n",
            200,
            Chunked(&[b"hello"]),
        ),
        case(
            "chunked-trailers",
            TE,
            "5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
            200,
            Chunked(&[b"hello"]),
        ),
        case("chunked-empty", TE, "0\r\n\r\n", 200, Chunked(&[])),
    ]
}

/// Both framings, or `Transfer-Encoding` spelled to confuse.
fn ambiguous() -> Vec<Case> {
    use Forward::*;
    vec![
        // CL.TE: the transfer coding wins (RFC 9112 6.3); what the length
        // would have left over is never a request.
        case(
            "cl-te",
            &format!("Content-Length: 6\r\n{TE}"),
            "0\r\n\r\nX",
            200,
            Chunked(&[]),
        ),
        case(
            "cl-te-smuggle",
            &format!("Content-Length: 41\r\n{TE}"),
            "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: gw.test\r\n\r\n",
            200,
            Chunked(&[]),
        ),
        // Without the client asking: both framings close the connection
        // after the answer (RFC 9112 6.1), so what follows is never served.
        Case {
            request: b"POST /cl-te-keep-alive HTTP/1.1\r\nHost: gw.test\r\n\
                       Content-Length: 41\r\nTransfer-Encoding: chunked\r\n\r\n\
                       0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: gw.test\r\n\r\n"
                .to_vec(),
            closes: true,
            ..case("cl-te-keep-alive", "", "", 200, Chunked(&[]))
        },
        // TE.CL: the chunk the length would have cut is the body.
        case(
            "te-cl",
            &format!("{TE}Content-Length: 3\r\n"),
            "8\r\nSMUGGLED\r\n0\r\n\r\n",
            200,
            Chunked(&[b"SMUGGLED"]),
        ),
        // TE.TE: chunked must be the last coding, of a well-formed field.
        case(
            "te-identity-last",
            "Transfer-Encoding: chunked, identity\r\n",
            HELLO,
            400,
            Nothing,
        ),
        case(
            "te-space-before-colon",
            "Transfer-Encoding : chunked\r\n",
            HELLO,
            400,
            Nothing,
        ),
        case(
            "te-tab",
            "Transfer-Encoding:\tchunked\t\r\n",
            HELLO,
            200,
            Chunked(&[b"hello"]),
        ),
        case(
            "te-upper",
            "Transfer-Encoding: CHUNKED\r\n",
            HELLO,
            200,
            Chunked(&[b"hello"]),
        ),
        case(
            "te-duplicate-identity-last",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
            HELLO,
            400,
            Nothing,
        ),
        case(
            "te-folded",
            "Transfer-Encoding:\r\n chunked\r\n",
            HELLO,
            400,
            Nothing,
        ),
        case(
            "te-vertical-tab",
            "Transfer-Encoding: \x0bchunked\r\n",
            HELLO,
            400,
            Nothing,
        ),
        case(
            "te-quoted",
            "Transfer-Encoding: \"chunked\"\r\n",
            HELLO,
            400,
            Nothing,
        ),
        case(
            "te-xchunked",
            "Transfer-Encoding: xchunked\r\n",
            HELLO,
            400,
            Nothing,
        ),
        case(
            "te-bare-cr",
            "Transfer-Encoding: chunked\rX: y\r\n",
            HELLO,
            400,
            Nothing,
        ),
        // Content-Length: one plain decimal number, or equal ones.
        case(
            "cl-differ",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            "hello!",
            400,
            Nothing,
        ),
        case(
            "cl-same",
            "Content-Length: 5\r\nContent-Length: 5\r\n",
            "hello",
            200,
            Length(b"hello"),
        ),
        case(
            "cl-list-differ",
            "Content-Length: 5, 6\r\n",
            "hello!",
            400,
            Nothing,
        ),
        case("cl-plus", "Content-Length: +5\r\n", "hello", 400, Nothing),
        case("cl-minus", "Content-Length: -1\r\n", "hello", 400, Nothing),
        case("cl-hex", "Content-Length: 0x5\r\n", "hello", 400, Nothing),
        case(
            "cl-inner-space",
            "Content-Length: 5 5\r\n",
            "hello",
            400,
            Nothing,
        ),
        case(
            "cl-overflow",
            "Content-Length: 99999999999999999999\r\n",
            "hello",
            400,
            Nothing,
        ),
    ]
}

/// Chunked bodies that cannot be decoded: 400, and the backend, which
/// may have had the head and the good chunks before, gets its connection
/// closed.
fn malformed() -> Vec<Case> {
    use Forward::Nothing;
    let bad = |name, body| case(name, TE, body, 400, Nothing);
    let mut cases = vec![
        bad("chunk-negative", "-5\r\nhello\r\n0\r\n\r\n"),
        bad(
            "chunk-overlong-size",
            "10000000000000005\r\nhello\r\n0\r\n\r\n",
        ),
        bad("chunk-not-hex", "g\r\nhello\r\n0\r\n\r\n"),
        bad("chunk-0x", "0x5\r\nhello\r\n0\r\n\r\n"),
        bad("chunk-longer-than-size", "5\r\nhelloXX\r\n0\r\n\r\n"),
        bad("chunk-missing-crlf", "5\r\nhello0\r\n\r\n"),
        bad("chunk-bare-lf", "5\nhello\r\n0\r\n\r\n"),
        bad("chunk-ext-lf", "5;a\nb\r\nhello\r\n0\r\n\r\n"),
        bad("chunk-after-good", "5\r\nhello\r\n2\r\nabcd\r\n0\r\n\r\n"),
    ];
    // The head and a good chunk reach the backend before the bad one
    // arrives.
    let mut split = bad("chunk-bad-later", "5\r\nhello\r\n5\r\nworldXX\r\n0\r\n\r\n");
    let at = split.request.len() - "5\r\nworldXX\r\n0\r\n\r\n".len();
    split.pause = Some(at);
    cases.push(split);
    cases
}

fn rejections(gw: &TestGateway, reason: &str) -> f64 {
    gw.metric(&format!("edgegw_rejections_total{{reason=\"{reason}\"}}"))
}

#[test]
fn well_framed_bodies_reach_the_backend_framed_by_the_gateway() {
    let backend = Recorder::start();
    let gw = TestGateway::start("framing-valid", &config(&backend));
    run(&backend, &Client::Plain(gw.port), "http", &valid());
}

#[test]
fn ambiguous_framing_is_refused_or_resolved_to_one_request() {
    let backend = Recorder::start();
    let gw = TestGateway::start("framing-ambiguous", &config(&backend));
    run(&backend, &Client::Plain(gw.port), "http", &ambiguous());
}

#[test]
fn a_malformed_chunked_body_answers_400_and_closes_the_backend_connection() {
    let backend = Recorder::start();
    let gw = TestGateway::start("framing-malformed", &config(&backend));
    let cases = malformed();
    let answers = run(&backend, &Client::Plain(gw.port), "http", &cases);
    let n = cases.len() as f64;
    assert_eq!(
        gw.wait_metric("edgegw_rejections_total{reason=\"bad_body\"}", n),
        n
    );
    // The JSON error says what is wrong.
    for (c, answer) in cases.iter().zip(&answers) {
        let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
        let json: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{}: {e}: {body:?}", c.name));
        assert_eq!(json["statusCode"], 400, "{}", c.name);
        let message = json["message"].as_str().unwrap();
        assert!(
            message.starts_with("The request body is malformed: "),
            "{}: {message}",
            c.name
        );
    }
    assert_eq!(rejections(&gw, "bad_request"), 0.0);
    // The gateway still serves, on a new backend connection.
    run(&backend, &Client::Plain(gw.port), "http", &valid()[..1]);
}

#[test]
fn framing_over_tls_is_as_strict() {
    let backend = Recorder::start();
    let certs = TempDir::new("framing-certs");
    let ca = TestCa::new(&certs.0);
    let leaf = ca.leaf(&certs.0, "gw", &["gw.test"]);
    let tls_port = free_port();
    let gw = TestGateway::start(
        "framing-tls",
        &format!(
            "[tls]\nlisten = \"127.0.0.1:{tls_port}\"\n[[tls.certificates]]\ncert = \"{}\"\nkey = \"{}\"\n{}",
            leaf.cert.display(),
            leaf.key.display(),
            config(&backend)
        ),
    );
    let pick = |cases: Vec<Case>, names: &[&str]| -> Vec<Case> {
        cases
            .into_iter()
            .filter(|c| names.contains(&c.name))
            .collect()
    };
    let mut cases = pick(valid(), &["cl", "chunked"]);
    cases.extend(pick(
        ambiguous(),
        &[
            "cl-te-smuggle",
            "te-cl",
            "te-space-before-colon",
            "cl-differ",
        ],
    ));
    cases.extend(pick(
        malformed(),
        &[
            "chunk-longer-than-size",
            "chunk-overlong-size",
            "chunk-bad-later",
        ],
    ));
    let client = Client::Tls {
        port: tls_port,
        ca: &ca.pem_path,
    };
    run(&backend, &client, "https", &cases);
    assert_eq!(
        gw.wait_metric("edgegw_rejections_total{reason=\"bad_body\"}", 3.0),
        3.0
    );
}
