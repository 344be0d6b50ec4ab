//! `cargo xtask bench cluster [--duration SECS] [--rounds N] [--connections N]`
//! (which builds everything, then runs this; EDGEGW_BIN picks another
//! edgegw binary), against a private redis-server:
//!
//! - accuracy: three gateways share one cluster limit (`--limit`, default
//!   30000 calls per minute) and wrk drives all three at once, well past
//!   the limit, inside one window: the calls admitted against the limit;
//! - cost: wrk against one gateway whose `rate-limit-by-key` (1,000,000
//!   calls per minute, never reached) is `scope: cluster`, and against the
//!   same with `scope: local`, alternating rounds: requests/s, p99 and the
//!   ratio, plus the Redis leases the cluster gateway took.
//!
//! Prints numbers and ratios; asserts nothing about speed.
#![forbid(unsafe_code)]

use std::{
    process::Command,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use edgegw_tests::{
    bench_args,
    gateway::{curl, metric_value},
    process::{Daemon, TempDir, edgegw_bin, free_port, wait_port},
    redis::{PASSWORD, RedisServer},
};

/// A gateway (XDP and access log off) answering every call itself after
/// the limit, so the figures are the proxy's and the limit's alone.
struct Gateway {
    _daemon: Daemon,
    port: u16,
    admin: u16,
    _files: TempDir,
}

fn gateway(tag: &str, redis: &RedisServer, calls: u64, scope: &str) -> Gateway {
    let tmp = TempDir::new(tag);
    let (port, admin) = (free_port(), free_port());
    let password = tmp.write("redis-password", PASSWORD);
    let catalog = tmp.write(
        "catalog.yaml",
        &format!(
            "apis:\n  - name: bench\n    subscription_required: false\n    policies:\n      inbound:\n\
             \x20       - rate-limit-by-key: {{calls: {calls}, renewal_period: 60, counter_key: \"{{header:x-tenant}}\", scope: {scope}}}\n\
             \x20       - return-response: {{status_code: 200, body: ok}}\n"
        ),
    );
    let config = tmp.write(
        "edgegw.toml",
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:{port}\"\naccess_log = \"off\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
             [xdp]\nmode = \"off\"\n[redis]\nurl = \"redis://127.0.0.1:{}\"\npassword_file = \"{}\"\n\
             [[apis]]\nname = \"bench\"\npath = \"/\"\nbackend = \"http://127.0.0.1:9\"\n\
             [catalog]\nfile = \"{}\"\n",
            redis.port,
            password.display(),
            catalog.display()
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
    Gateway {
        _daemon: daemon,
        port,
        admin,
        _files: tmp,
    }
}

impl Gateway {
    fn metric(&self, name: &str) -> f64 {
        let (_, text) = curl(&[&format!("http://127.0.0.1:{}/metrics", self.admin)]);
        metric_value(&text, name)
    }
}

/// What wrk reported.
struct Wrk {
    requests: u64,
    non_2xx: u64,
    per_sec: f64,
    p99_ms: f64,
}

fn wrk(port: u16, tenant: &str, connections: u64, duration: Duration) -> Wrk {
    let out = Command::new("wrk")
        .args(["--latency", "-t", "1", "-c", &connections.to_string()])
        .args(["-d", &format!("{}s", duration.as_secs().max(1))])
        .args(["-H", &format!("x-tenant: {tenant}")])
        .arg(format!("http://127.0.0.1:{port}/x"))
        .output()
        .expect("wrk is missing: run `cargo xtask setup`");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk: {text}");
    let field = |prefix: &str| -> Option<&str> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(str::trim)
    };
    let ms = |v: &str| -> f64 {
        let (n, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
        let n: f64 = n.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => n / 1000.0,
            "s" => n * 1000.0,
            _ => n,
        }
    };
    Wrk {
        requests: text
            .lines()
            .find_map(|l| l.trim().split_once(" requests in "))
            .and_then(|(n, _)| n.parse().ok())
            .unwrap_or_else(|| panic!("wrk output: {text}")),
        non_2xx: field("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        per_sec: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN),
        p99_ms: field("99%").map(ms).unwrap_or(f64::NAN),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Waits until `room` seconds remain in the current minute (the windows
/// of cluster limits are aligned to the wall clock).
fn wait_for_window_room(room: u64) {
    let into = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if into + room > 60 {
        std::thread::sleep(Duration::from_secs(60 - into) + Duration::from_millis(200));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let duration = Duration::from_secs(bench_args::number(&args, "--duration", 5));
    let rounds = bench_args::number(&args, "--rounds", 3).max(1);
    let connections = bench_args::number(&args, "--connections", 32);
    let limit = bench_args::number(&args, "--limit", 30_000);
    println!("edgegw binary: {}", edgegw_bin().display());
    let dir = TempDir::new("cluster-bench");
    let redis = RedisServer::start(&dir.0, free_port());

    // Accuracy: three gateways, one budget, all driven at once.
    let gateways: Vec<Gateway> = (0..3)
        .map(|i| gateway(&format!("cluster-bench-{i}"), &redis, limit, "cluster"))
        .collect();
    wait_for_window_room(duration.as_secs() + 5);
    let runs: Vec<Wrk> = std::thread::scope(|s| {
        let handles: Vec<_> = gateways
            .iter()
            .map(|g| s.spawn(|| wrk(g.port, "accuracy", connections, duration)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let sent: u64 = runs.iter().map(|r| r.requests).sum();
    let admitted: u64 = runs.iter().map(|r| r.requests - r.non_2xx).sum();
    println!(
        "accuracy: 3 gateways, limit {limit}/min, {sent} calls in {}s: {admitted} admitted ({:+.2}% of the limit)",
        duration.as_secs(),
        (admitted as f64 / limit as f64 - 1.0) * 100.0
    );
    drop(gateways);

    // Cost: the same gateway with a cluster and a local limit.
    let cluster = gateway("cluster-bench-cluster", &redis, 1_000_000, "cluster");
    let local = gateway("cluster-bench-local", &redis, 1_000_000, "local");
    let (mut c_rps, mut l_rps, mut c_p99, mut l_p99) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        let tenant = format!("cost-{round}");
        let l = wrk(local.port, &tenant, connections, duration);
        let c = wrk(cluster.port, &tenant, connections, duration);
        println!(
            "round {round}: local {:.0} req/s p99 {:.2} ms | cluster {:.0} req/s p99 {:.2} ms",
            l.per_sec, l.p99_ms, c.per_sec, c.p99_ms
        );
        assert_eq!(l.non_2xx + c.non_2xx, 0, "the cost limit is never reached");
        l_rps.push(l.per_sec);
        c_rps.push(c.per_sec);
        l_p99.push(l.p99_ms);
        c_p99.push(c.p99_ms);
    }
    let (c, l) = (median(c_rps), median(l_rps));
    println!(
        "cost (median of {rounds}): cluster {c:.0} req/s p99 {:.2} ms, local {l:.0} req/s p99 {:.2} ms: cluster/local = {:.3}x ({:+.1}%); Redis leases taken: {}",
        median(c_p99),
        median(l_p99),
        c / l,
        (c / l - 1.0) * 100.0,
        cluster.metric("edgegw_redis_leases_total")
    );
    println!(
        "redis up on the cluster gateway: {}",
        cluster.metric("edgegw_redis_up")
    );
    drop((cluster, local));
}
