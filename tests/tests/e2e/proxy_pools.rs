//! Backend pools end to end: three real backend processes
//! (`pool_member`) behind one `[[backends]]` entry. Weighted round robin
//! within 5% over 10,000 requests; a member killed under bounded load
//! (failed requests counted and reported), ejected, restarted on the same
//! port and brought back by the active health checks; a failing backend
//! tripping the circuit breaker (503 + Retry-After) which closes after
//! the trip duration; priority failover; bad pool settings refused whole.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use edgegw_tests::{
    gateway::{TestGateway, curl},
    process::{TempDir, edgegw, free_port, wait_port},
};

/// A `pool_member` process; SIGKILLed when dropped.
struct MemberProcess {
    port: u16,
    name: String,
    child: Option<Child>,
}

impl MemberProcess {
    fn start(name: &str, port: u16, failing: bool) -> MemberProcess {
        let mut m = MemberProcess {
            port,
            name: name.into(),
            child: None,
        };
        m.spawn(failing);
        m
    }

    fn spawn(&mut self, failing: bool) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pool_member"));
        cmd.args(["--port", &self.port.to_string(), "--name", &self.name]);
        if failing {
            cmd.arg("--fail");
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_port(&format!("127.0.0.1:{}", self.port));
    }

    /// SIGKILL: the process dies without closing anything gracefully.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn authority(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Requests it served since it started (health checks excluded).
    fn hits(&self) -> u64 {
        let (status, body) = curl(&[&format!("{}/__hits", self.url())]);
        assert_eq!(status, 200);
        body.trim().parse().unwrap()
    }
}

impl Drop for MemberProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A keep-alive HTTP/1.1 client on one connection, reconnecting when the
/// gateway closes it.
struct Client {
    port: u16,
    conn: Option<BufReader<TcpStream>>,
}

/// One answer: status and `x-member`.
struct Reply {
    status: u16,
    member: String,
    retry_after: Option<String>,
}

impl Client {
    fn new(port: u16) -> Client {
        Client { port, conn: None }
    }

    fn get(&mut self, path: &str) -> Reply {
        for _ in 0..2 {
            if let Some(reply) = self.try_get(path) {
                return reply;
            }
            self.conn = None;
        }
        Reply {
            status: 0,
            member: String::new(),
            retry_after: None,
        }
    }

    fn try_get(&mut self, path: &str) -> Option<Reply> {
        if self.conn.is_none() {
            let s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
            self.conn = Some(BufReader::new(s));
        }
        let conn = self.conn.as_mut()?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: pool.test\r\n\r\n");
        conn.get_mut().write_all(req.as_bytes()).ok()?;
        let mut line = String::new();
        conn.read_line(&mut line).ok()?;
        let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
        let (mut length, mut member, mut retry_after, mut close) =
            (0usize, String::new(), None, false);
        loop {
            line.clear();
            conn.read_line(&mut line).ok()?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (name, value) = l.split_once(':')?;
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().ok()?,
                "x-member" => member = value.to_string(),
                "retry-after" => retry_after = Some(value.to_string()),
                "connection" => close = value.eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        conn.read_exact(&mut body).ok()?;
        if close {
            self.conn = None;
        }
        Some(Reply {
            status,
            member,
            retry_after,
        })
    }
}

fn pool_config(members: &[(&MemberProcess, u32, u32)], extra: &str) -> String {
    let list: Vec<String> = members
        .iter()
        .map(|(m, weight, priority)| {
            format!(
                "{{ url = \"{}\", weight = {weight}, priority = {priority} }}",
                m.url()
            )
        })
        .collect();
    format!(
        "[[backends]]\nname = \"pool\"\nmembers = [{}]\nconnect_timeout_ms = 500\n{extra}\n[[apis]]\nname = \"p\"\npath = \"/p\"\nbackend = \"pool\"\n",
        list.join(", ")
    )
}

fn member_metric(gw: &TestGateway, series: &str, m: &MemberProcess) -> f64 {
    gw.metric(&format!(
        "edgegw_pool_member_{series}{{backend=\"pool\",member=\"{0}\",address=\"{0}\"}}",
        m.authority()
    ))
}

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn weights_5_3_2_hold_within_5_percent_over_10000_requests() {
    let (a, b, c) = (
        MemberProcess::start("a", free_port(), false),
        MemberProcess::start("b", free_port(), false),
        MemberProcess::start("c", free_port(), false),
    );
    let health =
        "[backends.health_check]\npath = \"/healthz\"\ninterval_ms = 1000\ntimeout_ms = 500\n";
    let gw = TestGateway::start(
        "pool-weights",
        &pool_config(&[(&a, 5, 1), (&b, 3, 1), (&c, 2, 1)], health),
    );
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut client = Client::new(gw.port);
    for _ in 0..10_000 {
        let r = client.get("/p/x");
        assert_eq!(r.status, 200);
        *counts.entry(r.member).or_default() += 1;
    }
    eprintln!("10,000 requests, weights 5:3:2: {counts:?}");
    for (name, weight) in [("a", 5), ("b", 3), ("c", 2)] {
        let want = 10_000.0 * weight as f64 / 10.0;
        let got = counts.get(name).copied().unwrap_or(0) as f64;
        assert!(
            (got - want).abs() <= want * 0.05,
            "member {name}: {got} requests, want {want} ± 5%: {counts:?}"
        );
    }
    assert_eq!(member_metric(&gw, "requests_total", &a), counts["a"] as f64);
}

#[test]
fn a_killed_member_is_ejected_without_failed_requests_and_comes_back_on_the_same_port() {
    let (a, mut b, c) = (
        MemberProcess::start("a", free_port(), false),
        MemberProcess::start("b", free_port(), false),
        MemberProcess::start("c", free_port(), false),
    );
    let settings = "[backends.health_check]\npath = \"/healthz\"\ninterval_ms = 300\ntimeout_ms = 200\nhealthy_threshold = 2\nunhealthy_threshold = 2\n[backends.ejection]\nconsecutive_failures = 3\nbase_ms = 1000\nmax_ms = 4000\n";
    let runtime = TempDir::new("pool-kill-run");
    let gw = TestGateway::start_with_env(
        "pool-kill",
        &pool_config(&[(&a, 1, 1), (&b, 1, 1), (&c, 1, 1)], settings),
        &[("EDGEGW_RUNTIME_DIR", runtime.0.to_str().unwrap())],
    );
    // Bounded load: 4 clients × 2,000 keep-alive GETs; b dies after 1,000.
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let port = gw.port;
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (done, failed) = (done.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut client = Client::new(port);
                for _ in 0..2_000 {
                    if client.get("/p/load").status != 200 {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    wait_until("1,000 requests", 60, || {
        done.load(Ordering::Relaxed) >= 1_000
    });
    b.kill();
    let killed_at = done.load(Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let failed = failed.load(Ordering::Relaxed);
    eprintln!(
        "member killed after {killed_at} of 8,000 requests: {failed} failed requests; ejections {}, retries {}",
        member_metric(&gw, "ejections_total", &b),
        member_metric(&gw, "retries_total", &a) + member_metric(&gw, "retries_total", &c),
    );
    assert_eq!(
        failed, 0,
        "idempotent requests are retried on another member"
    );
    assert!(
        member_metric(&gw, "ejections_total", &b) >= 1.0,
        "{}",
        gw.metrics()
    );
    wait_until("health checks take b out", 10, || {
        member_metric(&gw, "healthy", &b) == 0.0
    });
    // `edgegw status` (refreshed every second) shows it out of service.
    let runtime_dir = runtime.0.to_str().unwrap().to_string();
    let b_view = || {
        let status = edgegw_tests::process::edgegw_json(&[
            "status",
            "--json",
            "--runtime-dir",
            &runtime_dir,
        ]);
        status["pools"][0]["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["member"] == b.authority().as_str())
            .unwrap_or_else(|| panic!("{status}"))
            .clone()
    };
    wait_until("status shows b unhealthy", 10, || {
        b_view()["state"] == "unhealthy"
    });
    assert!(b_view()["ejections"].as_u64().unwrap() >= 1);

    // Back on the same port: the checks bring it back, it gets traffic.
    b.spawn(false);
    wait_until("health checks bring b back", 10, || {
        member_metric(&gw, "healthy", &b) == 1.0
    });
    let mut client = Client::new(gw.port);
    for _ in 0..300 {
        assert_eq!(client.get("/p/after").status, 200);
    }
    let hits = b.hits();
    assert!(
        (80..=120).contains(&hits),
        "b served {hits} of 300 after coming back"
    );
}

#[test]
fn a_failing_backend_trips_the_breaker_which_closes_after_the_trip_duration() {
    let m = MemberProcess::start("solo", free_port(), true);
    let text = format!(
        "[[backends]]\nname = \"pool\"\nurl = \"{}\"\n[backends.ejection]\nconsecutive_failures = 0\n[backends.circuit_breaker]\nfailure_count = 3\ninterval_secs = 10\nstatus_code_ranges = [\"500-599\"]\ntrip_duration_secs = 2\n[[apis]]\nname = \"p\"\npath = \"/p\"\nbackend = \"pool\"\n",
        m.url()
    );
    let gw = TestGateway::start("pool-breaker", &text);
    let mut client = Client::new(gw.port);
    for _ in 0..3 {
        assert_eq!(client.get("/p/x").status, 500, "the backend's own answer");
    }
    let open = client.get("/p/x");
    assert_eq!(open.status, 503);
    let after: u64 = open.retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&after), "Retry-After {after}");
    let (status, body) = curl(&[&gw.url("/p/x")]);
    assert_eq!(status, 503);
    assert!(body.contains("circuit breaker open"), "{body}");
    assert_eq!(m.hits(), 3, "nothing reaches the backend while open");
    assert_eq!(member_metric(&gw, "breaker_open", &m), 1.0);
    assert_eq!(member_metric(&gw, "breaker_trips_total", &m), 1.0);
    // The backend recovers; after the trip duration the breaker closes.
    curl(&[&format!("{}/__ok", m.url())]);
    std::thread::sleep(Duration::from_millis(2_100));
    let closed = client.get("/p/x");
    assert_eq!((closed.status, closed.member.as_str()), (200, "solo"));
    assert_eq!(member_metric(&gw, "breaker_open", &m), 0.0);
}

#[test]
fn the_next_priority_group_serves_only_while_the_first_has_no_member() {
    let (mut first, second) = (
        MemberProcess::start("first", free_port(), false),
        MemberProcess::start("second", free_port(), false),
    );
    let settings = "[backends.ejection]\nconsecutive_failures = 1\nbase_ms = 1000\nmax_ms = 1000\n";
    let gw = TestGateway::start(
        "pool-priority",
        &pool_config(&[(&first, 1, 1), (&second, 1, 2)], settings),
    );
    let mut client = Client::new(gw.port);
    for _ in 0..50 {
        assert_eq!(client.get("/p/x").member, "first");
    }
    first.kill();
    for _ in 0..50 {
        let r = client.get("/p/x");
        assert_eq!((r.status, r.member.as_str()), (200, "second"));
    }
    first.spawn(false);
    // The ejection (1 s) ends: the first group takes the traffic again.
    wait_until("the first group back", 10, || {
        client.get("/p/x").member == "first"
    });
    for _ in 0..50 {
        assert_eq!(client.get("/p/x").member, "first");
    }
}

#[test]
fn bad_pool_settings_are_one_line_at_load_and_a_reload_changes_nothing() {
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "members = [{ url = \"http://no-such-member.invalid:8080\" }]",
            "",
            &[
                "backend \"pool\"",
                "member \"no-such-member.invalid:8080\" cannot be resolved",
                "fix the host name",
            ],
        ),
        (
            "members = [{ url = \"http://127.0.0.1:9\", weight = 0 }]",
            "",
            &[
                "c.toml",
                "backend \"pool\"",
                "members[0]: weight 0 is out of range; use 1 to 1000",
            ],
        ),
        (
            "members = [{ url = \"http://127.0.0.1:9\" }]\nbalance = \"random\"",
            "",
            &[
                "backend \"pool\"",
                "balance \"random\" is unknown; use \"round-robin\" or \"least-requests\"",
            ],
        ),
        (
            "members = [{ url = \"http://127.0.0.1:9\" }]",
            "[backends.circuit_breaker]\nfailure_count = 0\ninterval_secs = 1\ntrip_duration_secs = 1\n",
            &[
                "backend \"pool\"",
                "circuit_breaker.failure_count = 0 is out of range",
            ],
        ),
    ];
    for (members, extra, wanted) in cases {
        let tmp = TempDir::new("pool-bad");
        let text = format!(
            "[gateway]\nlisten = \"127.0.0.1:{}\"\n[xdp]\nmode = \"off\"\n[[backends]]\nname = \"pool\"\n{members}\n{extra}[[apis]]\nname = \"p\"\npath = \"/p\"\nbackend = \"pool\"\n",
            free_port()
        );
        let cfg = tmp.write("c.toml", &text);
        let out = edgegw(&["run", "--config", cfg.to_str().unwrap()]);
        edgegw_tests::process::assert_one_line_error(&out, wanted);
    }

    // A running gateway keeps its pool when a reload brings a bad one.
    let m = MemberProcess::start("kept", free_port(), false);
    let gw = TestGateway::start("pool-bad-reload", &pool_config(&[(&m, 1, 1)], ""));
    let good = std::fs::read_to_string(&gw.config).unwrap();
    std::fs::write(&gw.config, good.replace("weight = 1", "weight = 5000")).unwrap();
    gw.daemon.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until("the reload refused", 10, || {
        gw.daemon
            .log_text()
            .contains("configuration reload rejected")
    });
    assert!(gw.daemon.log_text().contains("weight 5000 is out of range"));
    let mut client = Client::new(gw.port);
    assert_eq!(client.get("/p/x").member, "kept");
}

/// A managed gateway with a pool from the control plane (`/v1/backends`):
/// its heartbeat reports each member's state, and the control plane shows
/// it in `GET /v1/gateways/{name}` (and the list): all available, then a
/// member killed under traffic is ejected (with its recent failures) and
/// taken out by the health checks, then back once restarted.
#[test]
fn member_state_reaches_the_control_plane_with_the_heartbeat() {
    use edgegw_tests::{
        cp::{ControlPlane, Store},
        managed::{ManagedNode, admin_ok, register},
    };
    use serde_json::{Value, json};
    let (a, mut b) = (
        MemberProcess::start("a", free_port(), false),
        MemberProcess::start("b", free_port(), false),
    );
    let tmp = TempDir::new("pool-hb");
    let cp = ControlPlane::launch(Store::Sqlite, &tmp.0, &[]);
    admin_ok(
        &cp,
        "PUT",
        "/v1/backends/pool",
        json!({"name": "pool", "members": [{"url": a.url()}, {"url": b.url()}],
               "connect_timeout_ms": 500,
               "health_check": {"path": "/healthz", "interval_ms": 300, "timeout_ms": 200,
                                "healthy_threshold": 2, "unhealthy_threshold": 2},
               "ejection": {"consecutive_failures": 2, "base_ms": 30000, "max_ms": 60000}}),
    );
    admin_ok(
        &cp,
        "PUT",
        "/v1/apis/p",
        json!({"name": "p", "path": "/p", "backend": "pool", "subscription_required": false}),
    );
    let token = register(&cp, "gw-pool", &["p"], None);
    let mut node = ManagedNode::of("gw-pool", &cp, &token, "");
    node.start();
    let got = node.wait_for("/p/x", 20, |s, _| s == 200);
    assert_eq!(got.0, 200, "{}", node.log());

    // The member `m` of the pool as the control plane shows gateway
    // `gw-pool`, once `pred` holds (heartbeats come every second).
    let shown = |m: &MemberProcess, what: &str, pred: &dyn Fn(&Value) -> bool| -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, gw) = cp.admin("GET", "/v1/gateways/gw-pool", None);
            assert_eq!(status, 200, "{gw}");
            let member = gw["heartbeat"]["pools"]
                .as_array()
                .and_then(|p| p.iter().find(|p| p["backend"] == "pool"))
                .and_then(|p| p["members"].as_array())
                .and_then(|ms| {
                    ms.iter()
                        .find(|x| x["member"] == m.authority().as_str())
                        .cloned()
                });
            if let Some(member) = member.filter(|v| pred(v)) {
                return member;
            }
            assert!(
                Instant::now() < deadline,
                "the control plane never showed {} {what}: {gw}\n{}",
                m.name,
                node.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    for m in [&a, &b] {
        let v = shown(m, "available", &|v| v["state"] == "available");
        assert_eq!(v["healthy"], true, "{v}");
        assert_eq!(v["ejected"], false, "{v}");
        assert_eq!(v["breaker_open"], false, "{v}");
    }

    // b dies; traffic finds out first (ejection, its failures counted),
    // then the health checks.
    b.kill();
    let mut client = Client::new(node.port);
    for _ in 0..20 {
        assert_eq!(client.get("/p/after").status, 200, "retried on a");
    }
    let v = shown(&b, "ejected", &|v| v["ejected"] == true);
    assert!(v["failures"].as_u64().unwrap() >= 2, "{v}");
    assert!(v["ejections"].as_u64().unwrap() >= 1, "{v}");
    let v = shown(&b, "unhealthy", &|v| v["state"] == "unhealthy");
    assert_eq!(v["healthy"], false, "{v}");
    assert_eq!(
        shown(&a, "available", &|v| v["state"] == "available")["healthy"],
        true
    );
    // The list of gateways shows the same.
    let (status, list) = cp.admin("GET", "/v1/gateways", None);
    assert_eq!(status, 200);
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "gw-pool")
        .cloned()
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        listed["heartbeat"]["pools"][0]["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["member"] == b.authority().as_str() && m["healthy"] == false),
        "{listed}"
    );

    // Restarted on the same port: the checks bring it back.
    b.spawn(false);
    let v = shown(&b, "available again", &|v| v["state"] == "available");
    assert_eq!(v["healthy"], true, "{v}");
    node.stop();
}
