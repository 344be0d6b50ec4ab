//! A control plane that answers garbage or hangs: a real TLS server that
//! misbehaves on purpose, in front of a real managed `edgegw` serving its
//! backup. Each misbehaviour is a clear sync error; nothing is applied
//! half-way (the version, the answers and the backups stay), nothing is
//! lost.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    time::Duration,
};

use edgegw_tests::{
    backends::tls_acceptor,
    certs::TestCa,
    managed::{ManagedNode, hello_bundle},
    process::TempDir,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GARBAGE: u8 = 0;
const OVERSIZED: u8 = 1;
const SERVER_ERROR: u8 = 2;
const HANG: u8 = 3;

/// A TLS server on a free loopback port answering every request as
/// `mode` says; runs until dropped.
struct BrokenCp {
    port: u16,
    mode: Arc<AtomicU8>,
    _runtime: tokio::runtime::Runtime,
}

impl BrokenCp {
    fn start(dir: &std::path::Path) -> (BrokenCp, std::path::PathBuf) {
        let ca = TestCa::new(dir);
        let leaf = ca.leaf(dir, "broken", &["127.0.0.1"]);
        // The gateway's sync client offers only http/1.1.
        let acceptor = tls_acceptor(&leaf);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(GARBAGE));
        let serving = mode.clone();
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let (acceptor, mode) = (acceptor.clone(), serving.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if tls.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let answer = match mode.load(Ordering::Relaxed) {
                        GARBAGE => {
                            let body = "{\"version\": 9, \"apis\": [oops";
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_bytes()
                        }
                        OVERSIZED => {
                            let mut a = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", 17 << 20).into_bytes();
                            a.resize(a.len() + (17 << 20), b' ');
                            a
                        }
                        SERVER_ERROR => {
                            let body = "{\"statusCode\": 500, \"message\": \"database is locked\"}";
                            format!("HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_bytes()
                        }
                        _ => {
                            // Hang: hold the connection, answer nothing.
                            tokio::time::sleep(Duration::from_secs(120)).await;
                            return;
                        }
                    };
                    let _ = tls.write_all(&answer).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        (
            BrokenCp {
                port,
                mode,
                _runtime: runtime,
            },
            ca.pem_path.clone(),
        )
    }
}

#[test]
fn garbage_or_a_hang_from_the_control_plane_changes_nothing() {
    let tmp = TempDir::new("broken");
    let (cp, ca) = BrokenCp::start(&tmp.0);
    let url = format!("https://127.0.0.1:{}", cp.port);
    let mut node = ManagedNode::new("brk", &url, Some(&ca), "tok", "");
    node.write_backup(4, &hello_bundle(4, "four"));
    node.start();
    // Generous deadlines: retries back off (with jitter) up to 30 s.
    for (mode, want) in [
        (GARBAGE, "rejected: control plane configuration"),
        (OVERSIZED, "exceeded 16777216 bytes"),
        (SERVER_ERROR, "answered status 500: database is locked"),
        // Cut after the long-poll wait (5 s) plus 10 s.
        (HANG, "no complete answer to GET within 15s"),
    ] {
        cp.mode.store(mode, Ordering::Relaxed);
        let s = node.wait_status(90, |v| {
            v["last_sync_error"]
                .as_str()
                .is_some_and(|e| e.contains(want))
        });
        let cp_view = &s["control_plane"];
        let error = cp_view["last_sync_error"].as_str().unwrap_or_default();
        assert!(error.contains(want), "mode {mode}: {s}\n{}", node.log());
        assert_eq!(cp_view["version"], 4, "mode {mode}: {s}");
        assert_eq!(node.get("/hello"), (200, "four".to_string()), "mode {mode}");
        assert_eq!(node.backups(), [4], "mode {mode}: no backup of garbage");
        let (status, ready) = node.readyz();
        assert_eq!(status, 200, "{ready}");
    }
    node.stop();
}
