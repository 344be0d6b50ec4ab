//! Cluster-wide rate limits (`scope: cluster`) end to end: three real
//! gateways share a private redis-server (Debian's, started here on a free
//! loopback port with a password, no persistence, stopped even on
//! failure). A limit of 1,000 calls per minute under 1,500 calls spread over
//! the gateways admits within 1% of 1,000 and never more; with Redis
//! stopped every call is still answered (200 or 429, never 5xx) and the
//! fallback shows in the log, `edgegw status` and the metrics; with Redis
//! back on the same port, counting resumes in Redis. Plus the bad inputs:
//! a cluster limit without `[redis]`, a wrong Redis URL, a missing
//! password file; a hung or erroring Redis; Redis over mutual TLS.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use edgegw_tests::{
    backends::TestBackend,
    gateway::{TestGateway, metric_value},
    process::{Daemon, TempDir, edgegw, edgegw_bin, free_port, wait_port},
    redis::{PASSWORD, RedisServer},
};

/// An edgegw gateway with its own runtime directory (for `edgegw status`).
struct Node {
    gw: TestGateway,
    runtime: PathBuf,
}

fn config(rest: &str, dir: &TempDir) -> (String, u16, u16) {
    let (port, admin) = (free_port(), free_port());
    (
        format!("{}{rest}", TestGateway::base_config(dir, port, admin)),
        port,
        admin,
    )
}

impl Node {
    fn start(tag: &str, rest: &str) -> Node {
        let tmp = TempDir::new(tag);
        let runtime = tmp.0.join("run");
        let (text, port, admin_port) = config(rest, &tmp);
        let config = tmp.write("edgegw.toml", &text);
        let mut cmd = Command::new(edgegw_bin());
        cmd.args(["run", "--config", config.to_str().unwrap(), "--runtime-dir"])
            .arg(&runtime)
            .env("EDGEGW_LOG", "info");
        let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
        daemon.wait_ready();
        wait_port(&format!("127.0.0.1:{port}"));
        Node {
            gw: TestGateway {
                daemon,
                port,
                admin_port,
                access_log: tmp.0.join("access.log"),
                config,
                tmp,
            },
            runtime,
        }
    }

    fn status(&self) -> serde_json::Value {
        let out = edgegw(&[
            "status",
            "--json",
            "--runtime-dir",
            self.runtime.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn status_text(&self) -> String {
        let out = edgegw(&["status", "--runtime-dir", self.runtime.to_str().unwrap()]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (up to 30 s) until the status shows Redis in `state`.
    fn wait_redis(&self, state: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.status();
            if s["redis"]["state"] == state {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis not {state} after 30 s: {}\n{}",
                s["redis"],
                self.gw.daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn rest(backend: &TestBackend, redis: &str, catalog: &Path) -> String {
    format!(
        r#"
[[apis]]
name = "shared"
path = "/shared"
backend = "http://{}"
{redis}
[catalog]
file = "{}"
"#,
        backend.addr,
        catalog.display()
    )
}

const CATALOG: &str = r#"
apis:
  - name: shared
    subscription_required: false
    policies:
      inbound:
        - rate-limit-by-key: {calls: 1000, renewal_period: 60, counter_key: "{header:x-tenant}", scope: cluster}
"#;

/// `n` calls of `tenant` to each gateway (one curl per gateway, keep-alive,
/// the gateways in parallel): the status codes.
fn load(nodes: &[&Node], tenant: &str, n: usize, dir: &TempDir) -> Vec<u16> {
    let clients: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let mut text = format!(
                "silent\nwrite-out = \"%{{http_code}}\\n\"\nheader = \"x-tenant: {tenant}\"\nmax-time = 10\n"
            );
            for _ in 0..n {
                text.push_str(&format!(
                    "url = \"{}\"\noutput = \"/dev/null\"\n",
                    node.gw.url("/shared/x")
                ));
            }
            let file = dir.write(&format!("curl-{tenant}-{i}.conf"), &text);
            std::thread::spawn(move || {
                let out = Command::new("curl").arg("-K").arg(&file).output().unwrap();
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(|l| l.parse::<u16>().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect()
}

/// Waits until at least `room` seconds remain in the current minute (the
/// limit's wall-clock window), so one load falls in one window.
fn wait_for_window_room(room: u64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = now.as_secs() % 60;
    if into + room > 60 {
        std::thread::sleep(Duration::from_secs(60 - into) + Duration::from_millis(200));
    }
}

#[test]
fn three_gateways_share_one_limit_and_fall_back_while_redis_is_down() {
    let dir = TempDir::new("cluster-redis");
    let redis_port = free_port();
    let mut redis = RedisServer::start(&dir.0, redis_port);
    let password = dir.write("redis-password", &format!("{PASSWORD}\n"));
    let catalog = dir.write("catalog.yaml", CATALOG);
    let backend = TestBackend::echo();
    let section = format!(
        "[redis]\nurl = \"redis://127.0.0.1:{redis_port}\"\npassword_file = \"{}\"\ncommand_timeout_ms = 200\n",
        password.display()
    );
    let nodes: Vec<Node> = (0..3)
        .map(|i| Node::start(&format!("cluster{i}"), &rest(&backend, &section, &catalog)))
        .collect();
    for n in &nodes {
        n.wait_redis("ok");
    }
    let all: Vec<&Node> = nodes.iter().collect();

    // 1. 1,500 calls over three gateways against 1,000 per minute.
    wait_for_window_room(20);
    let codes = load(&all, "a", 500, &dir);
    assert_eq!(codes.len(), 1500);
    assert!(
        codes.iter().all(|c| *c == 200 || *c == 429),
        "only 200 and 429: {codes:?}"
    );
    let admitted = codes.iter().filter(|c| **c == 200).count();
    println!("cluster limit 1000/min, 3 gateways, 1500 calls: {admitted} admitted");
    assert!(admitted <= 1000, "overshoot: {admitted} admitted");
    assert!(admitted >= 990, "more than 1% under: {admitted} admitted");
    let counted = redis.counters();
    println!("redis counters after the load: {counted:?}");
    assert_eq!(counted.len(), 1, "one window, one key: {counted:?}");
    assert_eq!(counted[0].1, 1000, "the whole budget leased, no more");
    let leases: Vec<f64> = nodes
        .iter()
        .map(|n| metric_value(&n.gw.metrics(), "edgegw_redis_leases_total"))
        .collect();
    println!("leases per gateway: {leases:?}");
    assert!(
        leases.iter().all(|l| *l > 0.0),
        "every gateway leased: {leases:?}"
    );
    assert!(
        leases.iter().sum::<f64>() < 1000.0,
        "shares, not one Redis command per call"
    );

    // 2. Redis stopped: every call answered, locally counted, reported.
    redis.stop();
    let codes = load(&all, "b", 20, &dir);
    println!("with Redis stopped: {} answers {:?}", codes.len(), {
        let mut c = codes.clone();
        c.dedup();
        c
    });
    assert_eq!(codes.len(), 60);
    assert!(
        codes.iter().all(|c| *c == 200),
        "local fallback admits: {codes:?}"
    );
    for n in &nodes {
        n.wait_redis("fallback");
        let m = n.gw.metrics();
        assert_eq!(metric_value(&m, "edgegw_redis_up"), 0.0);
        assert!(
            metric_value(&m, "edgegw_cluster_limit_fallback_total") >= 1.0,
            "{m}"
        );
        assert!(
            n.status_text().contains("FALLBACK since"),
            "{}",
            n.status_text()
        );
        assert!(
            n.gw.daemon
                .log_text()
                .contains("cluster rate limits now count locally on this gateway"),
            "{}",
            n.gw.daemon.log_text()
        );
    }

    // 3. Redis back on the same port (empty): counting resumes in Redis.
    let redis = RedisServer::start(&dir.0, redis_port);
    for n in &nodes {
        n.wait_redis("ok");
    }
    assert!(redis.counters().is_empty());
    wait_for_window_room(10);
    let codes = load(&all, "c", 10, &dir);
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
    let counted = redis.counters();
    println!("redis counters after Redis came back: {counted:?}");
    assert_eq!(counted.len(), 1, "{counted:?}");
    // 10 calls per gateway, leased in shares of 3: 4 shares each, every
    // call counted in Redis (plus at most one unused share per gateway).
    assert_eq!(counted[0].1, 36, "{counted:?}");
    for n in &nodes {
        assert_eq!(metric_value(&n.gw.metrics(), "edgegw_redis_up"), 1.0);
    }
}

/// `edgegw run` with `rest` that must fail at start: its stderr.
fn refused(tag: &str, rest: &str) -> String {
    let tmp = TempDir::new(tag);
    let (text, _, _) = config(rest, &tmp);
    let config = tmp.write("edgegw.toml", &text);
    let mut cmd = Command::new(edgegw_bin());
    cmd.args(["run", "--config", config.to_str().unwrap(), "--runtime-dir"])
        .arg(tmp.0.join("run"));
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = daemon.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "edgegw did not refuse: {}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    daemon.log_text()
}

/// The first line of `log` holding `wanted[0]` holds all of `wanted`.
fn one_line_with(log: &str, wanted: &[&str]) {
    let line = log
        .lines()
        .find(|l| l.contains(wanted[0]))
        .unwrap_or_else(|| panic!("{:?} not in:\n{log}", wanted[0]));
    for w in wanted {
        assert!(line.contains(w), "{w:?} not in {line:?}");
    }
}

#[test]
fn bad_redis_settings_are_refused_with_one_clear_line() {
    let backend = TestBackend::echo();
    let dir = TempDir::new("cluster-bad");
    let catalog = dir.write("catalog.yaml", CATALOG);

    // A cluster limit on a node without [redis].
    let log = refused("nored", &rest(&backend, "", &catalog));
    one_line_with(
        &log,
        &[
            "scope: cluster needs a Redis",
            "api shared/inbound/0",
            "add [redis] url",
        ],
    );

    // A URL that is no Redis URL.
    let log = refused(
        "badurl",
        &rest(
            &backend,
            "[redis]\nurl = \"http://127.0.0.1:6379\"\n",
            &catalog,
        ),
    );
    one_line_with(
        &log,
        &["redis.url: \"http://127.0.0.1:6379\" must start with redis://"],
    );

    // A password in the URL.
    let log = refused(
        "pwurl",
        &rest(
            &backend,
            "[redis]\nurl = \"redis://:secret@127.0.0.1:6379\"\n",
            &catalog,
        ),
    );
    one_line_with(&log, &["redis.url: holds a password", "password_file"]);

    // A password file that is not there.
    let missing = dir.0.join("no-such-password");
    let log = refused(
        "nopw",
        &rest(
            &backend,
            &format!(
                "[redis]\nurl = \"redis://127.0.0.1:6379\"\npassword_file = \"{}\"\n",
                missing.display()
            ),
            &catalog,
        ),
    );
    one_line_with(
        &log,
        &[
            "cannot read redis.password_file",
            "no-such-password",
            "write the Redis password",
        ],
    );
}

#[test]
fn a_redis_url_where_nothing_answers_serves_with_the_local_fallback() {
    let backend = TestBackend::echo();
    let dir = TempDir::new("cluster-nobody");
    let catalog = dir.write("catalog.yaml", CATALOG);
    let nobody = free_port();
    let node = Node::start(
        "cluster-nobody",
        &rest(
            &backend,
            &format!("[redis]\nurl = \"redis://127.0.0.1:{nobody}\"\n"),
            &catalog,
        ),
    );
    node.wait_redis("fallback");
    let codes = load(&[&node], "a", 5, &dir);
    assert_eq!(codes, [200; 5]);
    let m = node.gw.metrics();
    assert_eq!(metric_value(&m, "edgegw_cluster_limit_fallback_total"), 5.0);
    one_line_with(
        &node.gw.daemon.log_text(),
        &[
            "Redis unreachable",
            &format!("redis://127.0.0.1:{nobody}"),
            "check that Redis runs",
        ],
    );
}

const SMALL_LIMIT: &str = r#"
apis:
  - name: shared
    subscription_required: false
    policies:
      inbound:
        - rate-limit-by-key: {calls: 10, renewal_period: 60, counter_key: "{header:x-tenant}", scope: cluster}
"#;

fn redis_section(port: u16, scheme: &str, password: &Path, extra: &str) -> String {
    format!(
        "[redis]\nurl = \"{scheme}://127.0.0.1:{port}\"\npassword_file = \"{}\"\ncommand_timeout_ms = 200\n{extra}",
        password.display()
    )
}

/// A Redis that hangs (SIGSTOP: connections open, no answers) or answers
/// errors (over `maxmemory`, writes refused): every call is still answered
/// by the local fallback, never a 5xx, the cause shows in the status, and
/// counting in Redis resumes once it answers again.
#[test]
fn a_hung_or_erroring_redis_never_fails_a_call() {
    let dir = TempDir::new("cluster-faults");
    let redis = RedisServer::start(&dir.0, free_port());
    let password = dir.write("redis-password", PASSWORD);
    let catalog = dir.write("catalog.yaml", CATALOG);
    let backend = TestBackend::echo();
    let section = redis_section(redis.port, "redis", &password, "");
    let node = Node::start("cluster-faults", &rest(&backend, &section, &catalog));
    node.wait_redis("ok");
    assert_eq!(load(&[&node], "warm", 3, &dir), vec![200; 3]);

    // Hung: the first lease waits at most command_timeout_ms, then every
    // call is counted locally without waiting on Redis.
    redis.freeze();
    let codes = load(&[&node], "hung", 30, &dir);
    assert_eq!(codes, vec![200; 30], "answered by the fallback");
    node.wait_redis("fallback");
    let status = node.status();
    assert!(
        status["redis"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("no answer within")),
        "{status}"
    );
    let m = node.gw.metrics();
    assert!(
        metric_value(&m, "edgegw_cluster_limit_fallback_total") >= 27.0,
        "{m}"
    );
    redis.resume();
    node.wait_redis("ok");
    wait_for_window_room(10);
    assert_eq!(load(&[&node], "thawed", 3, &dir), vec![200; 3]);
    assert!(
        redis.counters().iter().any(|(k, _)| k.contains("thawed")),
        "counting resumed in Redis: {:?}",
        redis.counters()
    );

    // Erroring: writes refused (OOM); the calls are still served.
    redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    redis.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    let errors_before = metric_value(&node.gw.metrics(), "edgegw_redis_errors_total");
    let codes = load(&[&node], "oom", 20, &dir);
    assert_eq!(codes, vec![200; 20], "answered by the fallback");
    let m = node.gw.metrics();
    assert!(
        metric_value(&m, "edgegw_redis_errors_total") > errors_before,
        "the refused writes are counted as errors: {m}"
    );
    assert!(
        node.gw.daemon.log_text().contains("OOM"),
        "the log says why: {}",
        node.gw.daemon.log_text()
    );
    redis.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    node.wait_redis("ok");
}

/// `rediss://` with the test's own CA and a client certificate (Redis
/// requires one): the limit counts in Redis over TLS. A gateway that trusts
/// another CA serves with the fallback and says why; an unreadable CA file
/// stops the start with one line.
#[test]
fn cluster_limits_count_in_redis_over_mutual_tls() {
    let dir = TempDir::new("cluster-tls");
    let tls = edgegw_tests::redis::RedisTls::new(&dir.0);
    let redis = RedisServer::start_tls(&dir.0, free_port(), tls);
    let files = redis.tls().unwrap();
    let password = dir.write("redis-password", PASSWORD);
    let catalog = dir.write("catalog.yaml", SMALL_LIMIT);
    let backend = TestBackend::echo();
    let trusted = format!(
        "ca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
        files.ca.display(),
        files.client.cert.display(),
        files.client.key.display()
    );
    let node = Node::start(
        "cluster-tls",
        &rest(
            &backend,
            &redis_section(redis.port, "rediss", &password, &trusted),
            &catalog,
        ),
    );
    node.wait_redis("ok");
    wait_for_window_room(15);
    let codes = load(&[&node], "tls", 15, &dir);
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 10, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 429).count(), 5, "{codes:?}");
    let counted = redis.counters();
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!(counted[0].1, 10, "counted in Redis over TLS: {counted:?}");

    // Another CA: the server's certificate is not trusted.
    let other_dir = TempDir::new("cluster-tls-other");
    let other = edgegw_tests::certs::TestCa::new(&other_dir.0);
    let untrusted = trusted.replace(
        &files.ca.display().to_string(),
        &other.pem_path.display().to_string(),
    );
    let stranger = Node::start(
        "cluster-tls-stranger",
        &rest(
            &backend,
            &redis_section(redis.port, "rediss", &password, &untrusted),
            &catalog,
        ),
    );
    stranger.wait_redis("fallback");
    assert_eq!(load(&[&stranger], "x", 3, &dir), vec![200; 3]);
    let error = stranger.status()["redis"]["last_error"].to_string();
    assert!(
        error.to_lowercase().contains("certificate"),
        "the status names the certificate problem: {error}"
    );

    // An unreadable CA file stops the start.
    let missing = trusted.replace(
        &files.ca.display().to_string(),
        &dir.0.join("no-such-ca.pem").display().to_string(),
    );
    let log = refused(
        "cluster-tls-noca",
        &rest(
            &backend,
            &redis_section(redis.port, "rediss", &password, &missing),
            &catalog,
        ),
    );
    one_line_with(
        &log,
        &["cannot read redis.ca_file", "no-such-ca.pem", "PEM"],
    );
    // TLS files on a plain redis:// URL are refused as well.
    let log = refused(
        "cluster-tls-plain",
        &rest(
            &backend,
            &redis_section(redis.port, "redis", &password, &trusted),
            &catalog,
        ),
    );
    one_line_with(&log, &["redis.ca_file: only used with TLS", "rediss://"]);
}
