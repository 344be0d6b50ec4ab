//! `cargo xtask bench sync` (which builds everything, then runs this):
//!
//! 1. Propagation: the real `edgegw-cp` and a real managed `edgegw`; N
//!    changes (default 60) of a `return-response` body through the
//!    management API. For each, the time from the write's 200 (curl's own
//!    clock: start + `time_total`, so process start-up counts against us)
//!    to the first gateway answer with the new body, seen by a client
//!    polling over one keep-alive connection. p50, p99, max, and the ratio
//!    to the managed product's self-hosted gateway, which polls every 10 s.
//! 2. Fleet: G simulated gateways (default 1000) registered, each holding
//!    a configuration long-poll on its own TLS connection from this one
//!    process for H seconds (default 20); the control plane's resident
//!    memory and CPU seconds (from /proc) idle and while holding them; then
//!    one write that wakes them all and the time until every one has it.
//!
//! `--store postgres` runs the control plane on the harness's private
//! PostgreSQL server instead of SQLite (the default).
//!
//! Prints numbers and ratios; asserts nothing about speed.
#![forbid(unsafe_code)]

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use edgegw_tests::{
    bench_args,
    cp::{ControlPlane, Store},
    cp_client::{self, connect, send, usage},
    managed::{ManagedNode, admin_ok, api_doc, register},
    process::TempDir,
};
use serde_json::json;

/// The managed product's self-hosted gateway configuration poll.
const PEER_POLL: Duration = Duration::from_secs(10);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let changes = bench_args::number(&args, "--changes", 60).max(50);
    let gateways = bench_args::number(&args, "--gateways", 1000);
    let hold = bench_args::number(&args, "--hold-secs", 20);
    let store = bench_args::store(&args);
    println!("control plane store: {store:?}");
    propagation(store, changes);
    fleet(store, gateways, Duration::from_secs(hold));
}

// ---- 1. propagation --------------------------------------------------

fn propagation(store: Store, changes: u64) {
    let tmp = TempDir::new("bsync");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/bench",
        api_doc("bench", "/bench", "v0", json!([])),
    );
    let token = register(&cp, "gw-bench", &["bench"], None);
    let mut node = ManagedNode::of("bench", &cp, &token, "");
    node.start();
    node.wait_body("/bench", "v0", 30);

    let seen: Arc<Mutex<HashMap<String, Instant>>> = Default::default();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (seen, stop, port) = (seen.clone(), stop.clone(), node.port);
        std::thread::spawn(move || {
            let mut conn = KeepAlive::connect(port);
            while !stop.load(Ordering::Relaxed) {
                let body = conn.get("/bench");
                seen.lock()
                    .unwrap()
                    .entry(body)
                    .or_insert_with(Instant::now);
                std::thread::sleep(Duration::from_micros(500));
            }
        })
    };

    let mut latencies = Vec::new();
    for i in 1..=changes {
        let want = format!("v{i}");
        let doc = api_doc("bench", "/bench", &want, json!([]));
        let done = timed_put(&cp, "/v1/apis/bench", &doc.to_string());
        let deadline = Instant::now() + Duration::from_secs(10);
        let at = loop {
            if let Some(at) = seen.lock().unwrap().get(&want) {
                break *at;
            }
            assert!(
                Instant::now() < deadline,
                "{want} never served:\n{}",
                node.log()
            );
            std::thread::sleep(Duration::from_micros(200));
        };
        latencies.push(at.saturating_duration_since(done));
        // Changes a little apart, as an operator's would be.
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    node.stop();

    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    let (p50, p99, max) = (pct(0.50), pct(0.99), *latencies.last().unwrap());
    println!(
        "sync propagation: management API write (200) -> new policy served by the gateway, {changes} changes"
    );
    println!(
        "  p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms   (target: p99 < 500 ms)",
        ms(p50),
        ms(p99),
        ms(max)
    );
    println!(
        "  vs the managed product's 10 s configuration poll (a change waits 5 s on average, up to 10 s): p99 is {:.0}x shorter than 10 s, p50 {:.0}x shorter than 5 s",
        PEER_POLL.as_secs_f64() / p99.as_secs_f64().max(1e-6),
        PEER_POLL.as_secs_f64() / 2.0 / p50.as_secs_f64().max(1e-6),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// An admin PUT through curl; when the 200 arrived, on curl's own clock
/// (its start plus `time_total`, so its process start-up is not counted
/// in our favour).
fn timed_put(cp: &ControlPlane, path: &str, body: &str) -> Instant {
    let started = Instant::now();
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{time_total}",
            "--cacert",
        ])
        .arg(cp.ca_file())
        .args([
            "-X",
            "PUT",
            "-H",
            &format!("Authorization: Bearer {}", cp.admin_token),
        ])
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ])
        .arg(format!("{}{path}", cp.url()))
        .output()
        .expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let (code, total) = text.split_once(' ').unwrap_or_default();
    assert_eq!(
        code,
        "200",
        "PUT {path}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    started + Duration::from_secs_f64(total.trim().parse().unwrap())
}

/// One HTTP/1.1 keep-alive connection to the gateway.
struct KeepAlive {
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    fn connect(port: u16) -> KeepAlive {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_nodelay(true).unwrap();
        KeepAlive {
            reader: BufReader::new(stream),
        }
    }

    /// GET `path`; the body (Content-Length framed).
    fn get(&mut self, path: &str) -> String {
        let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        String::from_utf8_lossy(&body).into_owned()
    }
}

// ---- 2. a fleet of long-polling gateways -----------------------------

fn fleet(store: Store, gateways: u64, hold: Duration) {
    let tmp = TempDir::new("bfleet");
    let cp = ControlPlane::launch(store, &tmp.0, &[]);
    let pid = cp.daemon.child.id();
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/bench",
        api_doc("bench", "/bench", "v0", json!([])),
    );
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", cp.port).parse().unwrap();
    let tls = cp_client::tls(&cp);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let admin = cp.admin_token.clone();
    runtime.block_on(async move {
        // Register the fleet over one keep-alive admin connection.
        let started = Instant::now();
        let mut sender = connect(addr, tls.clone()).await;
        let mut tokens = Vec::new();
        for i in 0..gateways {
            let body = json!({"name": format!("sim-{i:04}"), "apis": ["bench"]}).to_string();
            let (status, _, answer) = send(&mut sender, "POST", "/v1/gateways", &admin, &[], body).await;
            assert_eq!(status, 201, "{}", String::from_utf8_lossy(&answer));
            let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap();
            tokens.push(answer["token"].as_str().unwrap().to_string());
        }
        let registered = started.elapsed();
        let (idle_rss, idle_cpu) = usage(pid);

        // Each simulated gateway: its own TLS connection, the first GET
        // (200 at once), then a long-poll held by the control plane.
        let (held_tx, mut held_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let woken: Arc<Mutex<Vec<Instant>>> = Default::default();
        let mut tasks = Vec::new();
        for token in tokens {
            let (tls, held_tx, woken) = (tls.clone(), held_tx.clone(), woken.clone());
            tasks.push(tokio::spawn(async move {
                let mut s = connect(addr, tls).await;
                let (status, headers, _) = send(&mut s, "GET", "/v1/gateway/config", &token, &[], String::new()).await;
                assert_eq!(status, 200);
                let etag = headers["etag"].clone();
                held_tx.send(()).unwrap();
                let path = "/v1/gateway/config?wait=60";
                loop {
                    let (status, headers, _) = send(&mut s, "GET", path, &token, &[("if-none-match", etag.clone())], String::new()).await;
                    if status == 200 {
                        woken.lock().unwrap().push(Instant::now());
                        assert_ne!(headers["etag"], etag);
                        return;
                    }
                    assert_eq!(status, 304);
                }
            }));
        }
        drop(held_tx);
        for _ in 0..gateways {
            held_rx.recv().await.unwrap();
        }
        // Let the long-polls settle in, then measure over the hold.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (start_rss, start_cpu) = usage(pid);
        tokio::time::sleep(hold).await;
        let (held_rss, held_cpu) = usage(pid);

        // One write wakes them all.
        let mut admin_conn = connect(addr, tls.clone()).await;
        let doc = api_doc("bench", "/bench", "v1", json!([])).to_string();
        let write = Instant::now();
        let (status, _, _) = send(&mut admin_conn, "PUT", "/v1/apis/bench", &admin, &[], doc).await;
        assert_eq!(status, 200);
        let acknowledged = write.elapsed();
        for t in tasks {
            t.await.unwrap();
        }
        let mut times: Vec<Duration> = woken
            .lock()
            .unwrap()
            .iter()
            .map(|t| t.saturating_duration_since(write))
            .collect();
        times.sort();
        let (after_rss, after_cpu) = usage(pid);

        println!("control plane with {gateways} simulated gateways long-polling (one TLS connection each, one client process):");
        println!(
            "  registered {gateways} gateways in {:.1} s; control plane idle: RSS {:.1} MiB, CPU {:.2} s so far",
            registered.as_secs_f64(),
            idle_rss as f64 / 1024.0,
            idle_cpu
        );
        println!(
            "  holding {gateways} long-polls for {} s: RSS {:.1} MiB ({:.1} KiB per gateway over idle), CPU {:.3} s in those {} s ({:.2}% of one core)",
            hold.as_secs(),
            held_rss as f64 / 1024.0,
            (held_rss.saturating_sub(idle_rss)) as f64 / gateways.max(1) as f64,
            held_cpu - start_cpu,
            hold.as_secs(),
            (held_cpu - start_cpu) / hold.as_secs_f64() * 100.0
        );
        let _ = start_rss;
        println!(
            "  one write waking all {gateways}: the write answered in {:.1} ms; every gateway had the change after {:.1} ms (p50 {:.1} ms); CPU {:.3} s for the wake-up; RSS after {:.1} MiB",
            ms(acknowledged),
            ms(*times.last().unwrap()),
            ms(times[times.len() / 2]),
            after_cpu - held_cpu,
            after_rss as f64 / 1024.0
        );
    });
}
