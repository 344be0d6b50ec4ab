//! `cargo xtask bench spray` and `cargo xtask bench reload` (which build
//! everything, then run this; EDGEGW_BIN picks another edgegw binary):
//!
//! - `spray [--sources N] [--duration SECS] [--rounds N] [--connections N]`:
//!   requests/s of a `rate-limit-by-key` keyed by `{client_ip}` (a limit
//!   that never triggers, then `return-response`) when the calls come from
//!   N distinct source addresses (default 200000, more than the policy's
//!   100000 keys: every new source evicts one) against the same from 10.
//!   Sources are loopback addresses 127.16.0.0 + i, bound by the client;
//!   each connection makes 4 keep-alive calls, then closes (with a reset,
//!   so no TIME_WAIT piles up on either side). Alternating rounds, median.
//! - `reload [--subscriptions N] [--rounds N] [--via file|cp|both]`: a
//!   catalog of N subscriptions (default 100000) on a running gateway; one
//!   subscription is added. `file`: to the node's catalog file, then
//!   SIGHUP (a whole reload). `cp`: through the control plane's REST API,
//!   which sends the gateway a delta (`docs/sync-protocol.md`). Prints the
//!   daemon's own apply time (its `took_ms`), the time from the signal or
//!   the write until the new key is accepted, and the resident memory
//!   before, at its peak during the apply, and after.
//!
//! Prints numbers and ratios; asserts nothing about speed.
#![forbid(unsafe_code)]

use std::{
    fmt::Write as _,
    net::{Ipv4Addr, SocketAddr},
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use edgegw_tests::{
    bench_args,
    gateway::curl,
    process::{Daemon, TempDir, edgegw_bin, free_port, wait_port},
};
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpSocket,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!("edgegw binary: {}", edgegw_bin().display());
    match args.first().map(String::as_str) {
        Some("spray") => spray(&args),
        Some("reload") => {
            let via = args
                .iter()
                .position(|a| a == "--via")
                .and_then(|i| args.get(i + 1))
                .map_or("both", String::as_str);
            match via {
                "file" => reload(&args),
                "cp" => reload_cp(&args),
                "both" => {
                    reload(&args);
                    reload_cp(&args);
                }
                other => panic!("--via {other}: use file, cp or both"),
            }
        }
        other => panic!("state_bench: unknown mode {other:?}; use spray or reload"),
    }
}

/// Starts edgegw (XDP off, no access log) with API "bench" on `/` and
/// `catalog` written to a file; returns the daemon, its port and the file.
fn gateway(tmp: &TempDir, catalog: &str) -> (Daemon, u16, std::path::PathBuf) {
    let port = free_port();
    let file = tmp.write("catalog.yaml", catalog);
    let config = tmp.write(
        "edgegw.toml",
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:{port}\"\naccess_log = \"off\"\n[xdp]\nmode = \"off\"\n\
             [[apis]]\nname = \"bench\"\npath = \"/\"\nbackend = \"http://127.0.0.1:9\"\n\
             [catalog]\nfile = \"{}\"\n",
            file.display()
        ),
    );
    let mut cmd = Command::new(edgegw_bin());
    cmd.args(["run", "--config", config.to_str().unwrap()])
        .arg("--runtime-dir")
        .arg(tmp.0.join("run"))
        .env("EDGEGW_LOG", "info");
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    daemon.wait_ready();
    wait_port(&format!("127.0.0.1:{port}"));
    (daemon, port, file)
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:").expect("VmRSS")
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Resets the process's peak resident memory (VmHWM); false if not allowed.
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---- spray --------------------------------------------------------------

const SPRAY_CATALOG: &str = "apis:
  - name: bench
    subscription_required: false
    policies:
      inbound:
        - rate-limit-by-key: {calls: 1000000000, renewal_period: 600, counter_key: \"{client_ip}\"}
        - return-response: {status_code: 200, body: ok}
";

/// The floor: the same answer without the limit, to tell the limit's
/// cost under a spray from the kernel's (many peers) and the client's.
const PLAIN_CATALOG: &str = "apis:
  - name: bench
    subscription_required: false
    policies:
      inbound:
        - return-response: {status_code: 200, body: ok}
";

const CALLS_PER_CONNECTION: usize = 4;

fn spray(args: &[String]) {
    let sources = bench_args::number(args, "--sources", 200_000) as u32;
    let duration = Duration::from_secs(bench_args::number(args, "--duration", 5));
    let rounds = bench_args::number(args, "--rounds", 3);
    let connections = bench_args::number(args, "--connections", 32) as usize;
    let tmp = TempDir::new("bspray");
    let plain_tmp = TempDir::new("bspray-plain");
    let (_limited, port, _) = gateway(&tmp, SPRAY_CATALOG);
    let (_plain, plain_port, _) = gateway(&plain_tmp, PLAIN_CATALOG);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let next = Arc::new(AtomicU32::new(0));
    let gateways = [("limited", port), ("no limit", plain_port)];
    for (name, port) in gateways {
        let (status, body) = curl(&[&format!("http://127.0.0.1:{port}/b")]);
        assert_eq!((status, body.as_str()), (200, "ok"));
        // Warm up: every source once, so the spray runs on a full key map
        // (and evicts for every new source).
        let gw: SocketAddr = ([127, 0, 0, 1], port).into();
        let (started, from) = (Instant::now(), next.load(Ordering::Relaxed));
        while next.load(Ordering::Relaxed).wrapping_sub(from) < sources {
            runtime.block_on(load(
                gw,
                sources,
                connections,
                Duration::from_secs(2),
                next.clone(),
            ));
        }
        println!(
            "{name}: warmed up with {sources} sources in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    // [gateway][few, many]
    let mut rates = vec![[Vec::new(), Vec::new()]; 2];
    for _ in 0..rounds {
        for (g, (_, port)) in gateways.iter().enumerate() {
            let gw: SocketAddr = ([127, 0, 0, 1], *port).into();
            for (i, n) in [10, sources].into_iter().enumerate() {
                let (ok, errors) =
                    runtime.block_on(load(gw, n, connections, duration, next.clone()));
                assert_eq!(errors, 0, "failed calls from {n} sources");
                rates[g][i].push(ok as f64 / duration.as_secs_f64());
            }
        }
    }
    println!(
        "bench spray: rate-limit-by-key on {{client_ip}} (100000 keys kept), {connections} connections, \
         {CALLS_PER_CONNECTION} calls each, {}s per run, median of {rounds} alternating rounds",
        duration.as_secs()
    );
    println!(
        "{:<10} {:>22} {:>22} {:>8}",
        "edgegw",
        "10 sources req/s",
        format!("{sources} sources req/s"),
        "ratio"
    );
    let mut ratios = Vec::new();
    for ((name, _), [few, many]) in gateways.iter().zip(rates) {
        let (few, many) = (median(few), median(many));
        println!("{name:<10} {few:>22.0} {many:>22.0} {:>7.2}x", many / few);
        ratios.push(many / few);
    }
    println!(
        "ratio {sources} sources / 10 sources with the limit: {:.2}x (target >= 0.9x); \
         without it (the kernel's and the client's share): {:.2}x",
        ratios[0], ratios[1]
    );
}

/// Calls from `sources` loopback addresses for `duration`: (ok, errors).
async fn load(
    gw: SocketAddr,
    sources: u32,
    connections: usize,
    duration: Duration,
    next: Arc<AtomicU32>,
) -> (u64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = tokio::time::Instant::now() + duration;
    let base = u32::from(Ipv4Addr::new(127, 16, 0, 0));
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (ok, errors, next) = (ok.clone(), errors.clone(), next.clone());
            tokio::spawn(async move {
                while tokio::time::Instant::now() < deadline {
                    let source =
                        Ipv4Addr::from(base + next.fetch_add(1, Ordering::Relaxed) % sources);
                    match connection(gw, source).await {
                        Ok(n) => ok.fetch_add(n, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (ok.load(Ordering::Relaxed), errors.load(Ordering::Relaxed))
}

/// One connection from `source`: its calls, each answered 200.
async fn connection(gw: SocketAddr, source: Ipv4Addr) -> std::io::Result<u64> {
    let socket = TcpSocket::new_v4()?;
    socket.bind((source, 0).into())?;
    let mut stream = socket.connect(gw).await?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(1024);
    for _ in 0..CALLS_PER_CONNECTION {
        stream
            .write_all(b"GET /b HTTP/1.1\r\nHost: bench\r\n\r\n")
            .await?;
        buf.clear();
        read_answer(&mut stream, &mut buf).await?;
    }
    // A reset, not a FIN: no TIME_WAIT for 200000 short connections.
    stream.set_zero_linger()?;
    Ok(CALLS_PER_CONNECTION as u64)
}

/// Reads one answer (head and `Content-Length` body); an error unless 200.
async fn read_answer(stream: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let bad = |why: &str| std::io::Error::other(why.to_string());
    loop {
        let mut chunk = [0u8; 2048];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        if !head.starts_with("http/1.1 200") {
            return Err(bad(&head));
        }
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| bad("no content-length"))?;
        if buf.len() >= end + 4 + length {
            return Ok(());
        }
    }
}

// ---- reload -------------------------------------------------------------

fn key(i: usize) -> String {
    format!("bench-key-{i:08}")
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Subscriptions 0..n to API "bench" (with a per-subscription rate limit).
fn subscriptions_catalog(n: usize) -> String {
    let mut text = String::from(
        "apis:\n  - name: bench\n    policies:\n      inbound:\n\
         \x20       - rate-limit: {calls: 1000000000, renewal_period: 60}\n\
         \x20       - return-response: {status_code: 200, body: ok}\nsubscriptions:\n",
    );
    for i in 0..n {
        let _ = writeln!(
            text,
            "  - {{id: s{i}, scope: \"api:bench\", primary_key_sha256: {}}}",
            hex_sha256(&key(i))
        );
    }
    text
}

fn reload(args: &[String]) {
    let n = bench_args::number(args, "--subscriptions", 100_000) as usize;
    let rounds = bench_args::number(args, "--rounds", 5) as usize;
    let tmp = TempDir::new("breload");
    let (daemon, port, file) = gateway(&tmp, &subscriptions_catalog(n));
    let url = format!("http://127.0.0.1:{port}/b");
    let with_key = |i: usize| {
        curl(&[
            "-H",
            &format!("Ocp-Apim-Subscription-Key: {}", key(i)),
            &url,
        ])
        .0
    };
    assert_eq!(with_key(0), 200);
    let pid = daemon.child.id();
    // Settled: the load's garbage is returned.
    std::thread::sleep(Duration::from_secs(1));
    let rss_start = rss_kib(pid);
    let mut rows = Vec::new();
    for round in 0..rounds {
        let added = n + round;
        assert_eq!(with_key(added), 401, "s{added} is not there yet");
        std::fs::write(&file, subscriptions_catalog(added + 1)).unwrap();
        let rss_before = rss_kib(pid);
        let peak_known = reset_peak(pid);
        let logged = daemon.log_text().matches("configuration reloaded").count();
        let signalled = Instant::now();
        daemon.signal(libc::SIGHUP);
        while with_key(added) != 200 {
            assert!(
                signalled.elapsed() < Duration::from_secs(60),
                "{}",
                daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let seen = signalled.elapsed();
        while daemon.log_text().matches("configuration reloaded").count() <= logged {
            std::thread::sleep(Duration::from_millis(5));
        }
        let took = took_ms(&daemon.log_text(), "configuration reloaded");
        let peak = status_kib(pid, "VmHWM:").filter(|_| peak_known);
        std::thread::sleep(Duration::from_secs(1));
        rows.push((took, seen, rss_before, peak, rss_kib(pid)));
    }
    println!(
        "bench reload: one subscription added to a catalog of {n} ({} KiB of YAML), SIGHUP, {rounds} rounds",
        subscriptions_catalog(n).len() / 1024
    );
    println!(
        "{:<6} {:>9} {:>18} {:>12} {:>16} {:>12}",
        "round", "apply ms", "signal->served ms", "RSS before", "peak in reload", "RSS after"
    );
    let mib = |k: u64| k as f64 / 1024.0;
    for (i, (took, seen, before, peak, after)) in rows.iter().enumerate() {
        let peak = peak.map_or("n/a".to_string(), |p| format!("{:.1} MiB", mib(p)));
        println!(
            "{i:<6} {took:>9} {:>18.1} {:>8.1} MiB {peak:>16} {:>8.1} MiB",
            seen.as_secs_f64() * 1000.0,
            mib(*before),
            mib(*after)
        );
    }
    let took = median(rows.iter().map(|r| r.0 as f64).collect());
    let seen = median(rows.iter().map(|r| r.1.as_secs_f64() * 1000.0).collect());
    let transient = rows
        .iter()
        .filter_map(|r| Some(r.3? as f64 - r.2 as f64))
        .fold(f64::NAN, f64::max);
    let last = rows.last().map_or(rss_start, |r| r.4);
    println!(
        "median apply {took:.0} ms (target < 50 ms), signal to served {seen:.1} ms; \
         resident memory {:.1} MiB at start, {:.1} MiB after {rounds} reloads ({:+.1} MiB); \
         largest peak during a reload {:+.1} MiB over the RSS before it",
        mib(rss_start),
        mib(last),
        mib(last) - mib(rss_start),
        transient / 1024.0
    );
}

/// One subscription added through the control plane (a delta) to a
/// gateway synced with N of them. The N are written straight into the
/// control plane's SQLite file (one write each through the API would
/// rebuild every bundle N times), then one write makes the bundles.
fn reload_cp(args: &[String]) {
    use edgegw_tests::{
        cp::ControlPlane,
        managed::{ManagedNode, admin_ok, register},
    };
    let n = bench_args::number(args, "--subscriptions", 100_000) as usize;
    let rounds = bench_args::number(args, "--rounds", 5) as usize;
    let tmp = TempDir::new("bdelta");
    let mut cp = ControlPlane::start(&tmp.0);
    let api = serde_json::json!({
        "name": "bench", "path": "/b", "backend": "http://127.0.0.1:9",
        "policies": {"inbound": [{"return-response": {"status_code": 200, "body": "ok"}}]}
    });
    admin_ok(&cp, "PUT", "/v1/apis/bench", api);
    cp.stop();
    let db = rusqlite::Connection::open(tmp.0.join("cp.db")).expect("the control plane's database");
    db.execute_batch("BEGIN").unwrap();
    {
        let mut insert = db
            .prepare("INSERT INTO resources (kind, name, body) VALUES ('subscriptions', ?1, ?2)")
            .unwrap();
        for i in 0..n {
            let body = serde_json::json!({
                "id": format!("s{i:08}"), "scope": "api:bench",
                "primary_key_sha256": hex_sha256(&key(i)),
            });
            insert
                .execute(rusqlite::params![format!("s{i:08}"), body.to_string()])
                .unwrap();
        }
    }
    db.execute_batch("UPDATE meta SET value = value + 1 WHERE key = 'revision'; COMMIT")
        .unwrap();
    drop(db);
    cp.restart();
    let registered = Instant::now();
    let token = register(&cp, "bench-gw", &["bench"], None);
    let register_ms = registered.elapsed().as_secs_f64() * 1000.0;
    let mut node = ManagedNode::of("bdelta-gw", &cp, &token, "");
    std::fs::write(
        &node.config,
        std::fs::read_to_string(&node.config)
            .unwrap()
            .replace("startup_timeout_secs = 5", "startup_timeout_secs = 60"),
    )
    .unwrap();
    node.start();
    let url = format!("http://127.0.0.1:{}/b", node.port);
    let with_key = |key: &str| curl(&["-H", &format!("Ocp-Apim-Subscription-Key: {key}"), &url]).0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while with_key(&key(0)) != 200 {
        assert!(Instant::now() < deadline, "{}", node.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = node.daemon.as_ref().unwrap().child.id();
    std::thread::sleep(Duration::from_secs(1));
    let rss_start = rss_kib(pid);
    const DELTA_LOG: &str = "subscriptions from the control plane applied";
    let mut rows = Vec::new();
    for round in 0..rounds {
        let rss_before = rss_kib(pid);
        let peak_known = reset_peak(pid);
        let logged = node.log().matches(DELTA_LOG).count();
        let written = Instant::now();
        let sub = admin_ok(
            &cp,
            "POST",
            "/v1/subscriptions",
            serde_json::json!({"id": format!("new-{round}"), "scope": "api:bench"}),
        );
        let write_ms = written.elapsed().as_secs_f64() * 1000.0;
        let new_key = sub["primary_key"].as_str().unwrap().to_string();
        while with_key(&new_key) != 200 {
            assert!(
                written.elapsed() < Duration::from_secs(60),
                "{}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let seen = written.elapsed();
        while node.log().matches(DELTA_LOG).count() <= logged {
            assert!(
                written.elapsed() < Duration::from_secs(60),
                "the change did not come as a delta: {}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let took = took_ms(&node.log(), DELTA_LOG);
        let peak = status_kib(pid, "VmHWM:").filter(|_| peak_known);
        std::thread::sleep(Duration::from_secs(1));
        rows.push((took, write_ms, seen, rss_before, peak, rss_kib(pid)));
    }
    println!(
        "bench reload --via cp: one subscription added through the control plane to a gateway \
         synced with {n}, {rounds} rounds (first bundle made in {register_ms:.0} ms)"
    );
    println!(
        "{:<6} {:>9} {:>12} {:>17} {:>12} {:>16} {:>12}",
        "round",
        "apply ms",
        "cp write ms",
        "write->served ms",
        "RSS before",
        "peak in apply",
        "RSS after"
    );
    let mib = |k: u64| k as f64 / 1024.0;
    for (i, (took, write, seen, before, peak, after)) in rows.iter().enumerate() {
        let peak = peak.map_or("n/a".to_string(), |p| format!("{:.1} MiB", mib(p)));
        println!(
            "{i:<6} {took:>9} {write:>12.1} {:>17.1} {:>8.1} MiB {peak:>16} {:>8.1} MiB",
            seen.as_secs_f64() * 1000.0,
            mib(*before),
            mib(*after)
        );
    }
    let took = median(rows.iter().map(|r| r.0 as f64).collect());
    let write = median(rows.iter().map(|r| r.1).collect());
    let seen = median(rows.iter().map(|r| r.2.as_secs_f64() * 1000.0).collect());
    let transient = rows
        .iter()
        .filter_map(|r| Some(r.4? as f64 - r.3 as f64))
        .fold(f64::NAN, f64::max);
    let last = rows.last().map_or(rss_start, |r| r.5);
    println!(
        "median apply {took:.0} ms on the gateway (target < 50 ms), control plane write {write:.0} ms, \
         write to served {seen:.1} ms; gateway memory {:.1} MiB at start, {:.1} MiB after {rounds} \
         changes ({:+.1} MiB); largest peak during an apply {:+.1} MiB over the RSS before it",
        mib(rss_start),
        mib(last),
        mib(last) - mib(rss_start),
        transient / 1024.0
    );
    node.stop();
    cp.stop();
}

/// The daemon's own `took_ms` in the last log line containing `line`.
fn took_ms(log: &str, line: &str) -> u64 {
    log.lines()
        .rev()
        .find(|l| l.contains(line))
        .and_then(|l| {
            let rest = &l[l.find("took_ms")? + "took_ms".len()..];
            let digits: String = rest
                .chars()
                .skip_while(|c| !c.is_ascii_digit())
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| panic!("no took_ms in the last {line:?} log line"))
}
