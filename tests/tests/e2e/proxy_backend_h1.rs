//! The lean HTTP/1.1 backend client, end to end: the real `edgegw` between
//! curl and a backend that answers with exact bytes. Every response framing
//! arrives whole, request bodies keep their length or are chunked,
//! connections are reused only when that is safe, and a backend that closes
//! connections or sends ambiguous heads never leaves a client hanging.

use std::time::Duration;

use edgegw_tests::{
    gateway::{TestGateway, curl, curl_json},
    process::TempDir,
    scripted::{Received, Reply, ScriptedBackend},
};

fn config(backend: &ScriptedBackend) -> String {
    format!(
        "[[apis]]\nname = \"scripted\"\npath = \"/\"\nbackend = \"http://{}\"\n",
        backend.addr
    )
}

/// 1 MiB that is not all the same byte.
fn big() -> Vec<u8> {
    (0..1 << 20).map(|i| (i % 251) as u8).collect()
}

fn length_reply(status: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn framings(req: &Received) -> Reply {
    let head = req.method == "HEAD";
    match req.target.as_str() {
        "/length" if head => Reply::keep("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
        "/length" => Reply::keep(length_reply("200 OK", b"hello")),
        "/chunked" => Reply::keep(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
             3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nx-trailer: t\r\n\r\n",
        ),
        "/until-close" => Reply::then_close("HTTP/1.1 200 OK\r\n\r\nread to the end"),
        "/big" => Reply::keep(length_reply("200 OK", &big())),
        "/bye" => Reply::then_close(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye",
        ),
        "/empty" => Reply::keep("HTTP/1.1 204 No Content\r\n\r\n"),
        "/continue" => Reply::keep(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ),
        other => panic!("unexpected request for {other}"),
    }
}

#[test]
fn every_response_framing_arrives_whole_and_connections_are_reused() {
    let backend = ScriptedBackend::start(framings);
    let gw = TestGateway::start("h1-framing", &config(&backend));
    let tmp = TempDir::new("h1-framing-out");
    let get = |path: &str| curl(&[&gw.url(path)]);

    for _ in 0..4 {
        assert_eq!(get("/length"), (200, "hello".into()));
    }
    assert_eq!(get("/chunked"), (200, "abcdefg".into()));
    assert_eq!(get("/until-close"), (200, "read to the end".into()));
    let file = tmp.0.join("big");
    let (status, _) = curl(&["-o", file.to_str().unwrap(), &gw.url("/big")]);
    assert_eq!(status, 200);
    assert!(
        std::fs::read(&file).unwrap() == big(),
        "1 MiB body arrives intact"
    );
    assert_eq!(get("/bye"), (200, "bye".into()));
    let (status, head) = curl(&["-I", &gw.url("/length")]);
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase().contains("content-length: 5"),
        "{head}"
    );
    assert_eq!(get("/empty"), (204, String::new()));
    assert_eq!(get("/continue"), (200, "ok".into()));
    let before = backend.connections();
    let (status, body) = curl(&[&gw.url("/length"), &gw.url("/length")]);
    assert_eq!((status, body.as_str()), (200, "hello\n200hello"));
    assert!(
        backend.connections() <= before + 1,
        "the second request reuses the connection"
    );

    // Each worker thread keeps its own connections; only the two answers
    // that end with a close need a new one.
    let requests = backend.received().len();
    assert_eq!(requests, 13);
    let workers = std::thread::available_parallelism().unwrap().get();
    let connections = backend.connections();
    assert!(
        connections <= workers + 2 && connections < requests,
        "{connections} backend connections for {requests} requests and {workers} workers"
    );
}

#[test]
fn request_bodies_keep_their_length_or_are_chunked() {
    let backend = ScriptedBackend::start(|_| Reply::keep(length_reply("200 OK", b"ok")));
    let gw = TestGateway::start("h1-bodies", &config(&backend));
    let tmp = TempDir::new("h1-bodies-in");
    let file = tmp.write("upload", "");
    std::fs::write(&file, big()).unwrap();
    let upload = format!("@{}", file.display());

    let sized = curl(&["--data-binary", &upload, &gw.url("/sized")]);
    let chunked = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &upload,
        &gw.url("/chunked"),
    ]);
    let empty = curl(&["-X", "POST", &gw.url("/empty")]);
    assert_eq!([sized.0, chunked.0, empty.0], [200, 200, 200]);

    let received = backend.received();
    let by = |t: &str| received.iter().find(|r| r.target == t).unwrap().clone();
    let sized = by("/sized");
    assert_eq!(sized.header("content-length"), Some("1048576"));
    assert_eq!(sized.header("transfer-encoding"), None);
    assert!(sized.body == big());
    let chunked = by("/chunked");
    assert_eq!(chunked.header("transfer-encoding"), Some("chunked"));
    assert_eq!(chunked.header("content-length"), None);
    assert!(chunked.body == big());
    assert_eq!(by("/empty").header("content-length"), Some("0"));
}

#[test]
fn closed_connections_and_ambiguous_heads_never_hang_a_client() {
    let backend = ScriptedBackend::start(|req| match req.target.as_str() {
        // A backend with a short keep-alive timeout.
        "/idle" => Reply {
            bytes: length_reply("200 OK", b"ok"),
            close_after: Some(Duration::from_millis(100)),
        },
        "/conflict" => {
            Reply::keep("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
        }
        "/garbage" => Reply::then_close("NOT HTTP AT ALL\r\n\r\n"),
        "/silent" => Reply::then_close(""),
        "/short" => Reply::then_close("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
        // Both framings: the transfer coding wins, the connection is not
        // reused.
        "/both" => Reply::keep(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 100\r\n\r\n\
             2\r\nok\r\n0\r\n\r\n",
        ),
        other => panic!("unexpected request for {other}"),
    });
    let gw = TestGateway::start("h1-broken", &config(&backend));

    for _ in 0..3 {
        assert_eq!(curl(&[&gw.url("/idle")]), (200, "ok".into()));
        std::thread::sleep(Duration::from_millis(300));
    }
    for path in ["/conflict", "/garbage", "/silent"] {
        let (status, body) = curl_json(&[&gw.url(path)]);
        assert_eq!(status, 502, "{path}: {body}");
        assert_eq!(body["statusCode"], 502);
    }
    // The head may already be on its way: the client sees a cut transfer
    // (or nothing), never a completed body.
    let (status, body) = curl(&[&gw.url("/short")]);
    assert!(
        status == 0 || (status == 200 && body.len() < 10),
        "a cut body is never completed: {status} {body:?}"
    );
    // Two requests on one client connection are served by one worker: the
    // second would reuse the first's backend connection if it could.
    let before = backend.connections();
    let (status, body) = curl(&[&gw.url("/both"), &gw.url("/both")]);
    assert_eq!((status, body.as_str()), (200, "ok\n200ok"));
    assert_eq!(
        backend.connections(),
        before + 2,
        "a connection that sent both framings is not reused"
    );
}

#[test]
fn a_request_meeting_a_closed_pooled_connection_is_replayed_only_when_idempotent() {
    // The backend answers the first request of each connection and closes
    // the connection when a second one arrives on it: the race of a backend
    // dropping an idle connection just as the gateway reuses it.
    let seen = std::sync::Mutex::new(std::collections::HashMap::<usize, usize>::new());
    let backend = ScriptedBackend::start(move |req| {
        let mut seen = seen.lock().unwrap();
        let n = seen.entry(req.conn).or_default();
        *n += 1;
        if *n == 1 {
            Reply::keep(length_reply("200 OK", b"ok"))
        } else {
            Reply::then_close("")
        }
    });
    let gw = TestGateway::start("h1-stale", &config(&backend));

    // One client connection, so one worker and one backend pool.
    let (status, body) = curl(&[&gw.url("/a"), &gw.url("/b")]);
    assert_eq!((status, body.as_str()), (200, "ok\n200ok"));
    assert_eq!(
        backend.connections(),
        2,
        "the GET was replayed on a new connection"
    );

    let post = ["-X", "POST"];
    let (status, body) = curl(&[
        post[0],
        post[1],
        &gw.url("/c"),
        post[0],
        post[1],
        &gw.url("/d"),
    ]);
    // Whichever POST meets a used connection gets a 502 (the other one is
    // answered on a fresh connection).
    let one_refused = (status == 502 && body.starts_with("ok\n200"))
        || (status == 200 && body.contains("\n502ok"));
    assert!(one_refused, "a POST is not replayed: {body}\n{status}");
    let posts = backend
        .received()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 2, "each POST reached the backend once");
}

#[test]
fn a_backend_falling_silent_mid_body_is_cut_off_after_the_response_timeout() {
    let backend = ScriptedBackend::start(|_| Reply {
        bytes: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart of it".to_vec(),
        close_after: Some(Duration::from_secs(30)),
    });
    let gw = TestGateway::start(
        "h1-stall",
        &format!(
            "[[backends]]\nname = \"slow\"\nurl = \"http://{}\"\nresponse_timeout_ms = 300\n\
             [[apis]]\nname = \"stall\"\npath = \"/\"\nbackend = \"slow\"\n",
            backend.addr
        ),
    );
    // curl's own cap is 10 s: exit 28 would mean the gateway kept the
    // client waiting for the backend; 18 is the cut transfer.
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", &gw.url("/")])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(18),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "part of it");
}

#[test]
fn the_client_gets_one_request_id_the_trace_the_backend_saw() {
    // The backend's own X-Request-Id gives way to the gateway's, whether the
    // lean HTTP/1.1 server or hyper (HTTP/2) writes the response.
    let backend = ScriptedBackend::start(|_| {
        Reply::keep(
            "HTTP/1.1 200 OK\r\nX-Request-Id: from-the-backend\r\nX-Other: kept\r\n\
             Content-Length: 2\r\n\r\nok",
        )
    });
    let gw = TestGateway::start("h1-request-id", &config(&backend));
    for (i, version) in ["--http1.1", "--http2-prior-knowledge"]
        .into_iter()
        .enumerate()
    {
        let (status, head) = curl(&[version, "-D", "-", "-o", "/dev/null", &gw.url("/id")]);
        assert_eq!(status, 200, "{version}: {head}");
        let values = |name: &str| -> Vec<String> {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
                .collect()
        };
        let received = backend.received();
        let traceparent = received[i].header("traceparent").expect("a traceparent");
        assert_eq!(
            values("x-request-id"),
            [&traceparent[3..35]],
            "{version}: {head}"
        );
        assert_eq!(values("x-other"), ["kept"], "{version}: {head}");
    }
}

#[test]
fn headers_the_backend_names_in_connection_stay_between_it_and_the_gateway() {
    // RFC 9110 7.6.1: a header named in Connection is for this hop only, as
    // are Keep-Alive and Connection itself; the rest reaches the client.
    let backend = ScriptedBackend::start(|_| {
        Reply::keep(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\n\
             Keep-Alive: timeout=5\r\nX-Other: kept\r\nContent-Length: 2\r\n\r\nok",
        )
    });
    let gw = TestGateway::start("h1-connection-names", &config(&backend));
    for version in ["--http1.1", "--http2-prior-knowledge"] {
        let (status, head) = curl(&[version, "-D", "-", "-o", "/dev/null", &gw.url("/hop")]);
        assert_eq!(status, 200, "{version}: {head}");
        let names: Vec<String> = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(n, _)| n.trim().to_ascii_lowercase())
            .collect();
        assert!(names.contains(&"x-other".to_string()), "{version}: {head}");
        for hop in ["x-hop", "keep-alive"] {
            assert!(
                !names.contains(&hop.to_string()),
                "{version}: {hop} reached the client: {head}"
            );
        }
    }
}
