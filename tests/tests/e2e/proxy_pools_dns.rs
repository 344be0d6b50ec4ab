//! A pool member given as a host name: every address the name resolves
//! to is a member of its own. The gateway runs with a hosts file of the
//! test's (in a mount namespace of its own, the system's file untouched)
//! naming 127.0.0.1 and ::1; a `pool_member` process listens on each.
//! Both take traffic; the one killed is ejected and taken out by its
//! health checks while the other serves every request; rewriting the
//! hosts file makes an address disappear and appear again, seen in
//! `edgegw status` and the metrics.

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use edgegw_tests::{
    gateway::{TestGateway, curl},
    process::{TempDir, edgegw_json, free_port, wait_port},
};

/// A `pool_member` on one address; SIGKILLed when dropped.
struct Backend(Option<Child>);

impl Backend {
    fn start(name: &str, host: &str, port: u16) -> Backend {
        let child = Command::new(env!("CARGO_BIN_EXE_pool_member"))
            .args(["--port", &port.to_string(), "--name", name, "--host", host])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let at = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        wait_port(&at);
        Backend(Some(child))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `n` requests; the answering member's name (`x-member`) of each.
fn spread(gw: &TestGateway, n: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        let (status, body) = curl(&[&gw.url("/p/x")]);
        assert_eq!(status, 200, "{body}");
        *counts.entry(body.trim().to_string()).or_default() += 1;
    }
    counts
}

#[test]
fn every_address_of_a_host_name_is_a_member_and_re_resolution_follows_the_name() {
    let port = free_port();
    let (v4, mut v6) = (
        Backend::start("v4", "127.0.0.1", port),
        Backend::start("v6", "::1", port),
    );
    let files = TempDir::new("pool-dns-hosts");
    let both = "127.0.0.1 twin.pool.test\n::1 twin.pool.test\n";
    let hosts = files.write("hosts", both);
    let member = format!("twin.pool.test:{port}");
    let config = format!(
        "[[backends]]\nname = \"pool\"\nmembers = [{{ url = \"http://{member}\" }}]\nconnect_timeout_ms = 500\nresolve_interval_ms = 300\n[backends.health_check]\npath = \"/healthz\"\ninterval_ms = 300\ntimeout_ms = 200\n[backends.ejection]\nconsecutive_failures = 2\nbase_ms = 5000\n[[apis]]\nname = \"p\"\npath = \"/p\"\nbackend = \"pool\"\n"
    );
    let runtime = TempDir::new("pool-dns-run");
    let runtime_dir = runtime.0.to_str().unwrap().to_string();
    let gw = TestGateway::start_with_hosts(
        "pool-dns",
        &config,
        &[("EDGEGW_RUNTIME_DIR", &runtime_dir)],
        &hosts,
    );

    // Both addresses take their share.
    let counts = spread(&gw, 100);
    eprintln!("100 requests to {member}: {counts:?}");
    assert!(
        counts.get("v4").copied().unwrap_or(0) >= 40
            && counts.get("v6").copied().unwrap_or(0) >= 40,
        "both addresses serve: {counts:?}"
    );
    let series = |name: &str, at: &str| {
        format!(
            "edgegw_pool_member_{name}{{backend=\"pool\",member=\"{member}\",address=\"{at}\"}}"
        )
    };
    let (a4, a6) = (format!("127.0.0.1:{port}"), format!("[::1]:{port}"));
    assert!(
        gw.metric(&series("requests_total", &a4)) >= 40.0,
        "{}",
        gw.metrics()
    );
    assert!(
        gw.metric(&series("requests_total", &a6)) >= 40.0,
        "{}",
        gw.metrics()
    );

    // The ::1 backend dies: no failed request (retried on the other
    // address), it is ejected, its checks take it out; v4 serves all.
    v6.kill();
    let counts = spread(&gw, 50);
    assert_eq!(counts.get("v4"), Some(&50), "{counts:?}");
    assert!(
        gw.metric(&series("ejections_total", &a6)) >= 1.0,
        "{}",
        gw.metrics()
    );
    wait_until("health checks take [::1] out", 10, || {
        gw.metric(&series("healthy", &a6)) == 0.0
    });
    assert_eq!(gw.metric(&series("healthy", &a4)), 1.0);

    // `edgegw status` lists the member once per address, with its state.
    let addresses = || -> Vec<(String, String)> {
        let status = edgegw_json(&["status", "--json", "--runtime-dir", &runtime_dir]);
        status["pools"][0]["members"]
            .as_array()
            .unwrap_or_else(|| panic!("{status}"))
            .iter()
            .map(|m| {
                assert_eq!(m["member"], member.as_str(), "{status}");
                (
                    m["address"].as_str().unwrap().to_string(),
                    m["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    wait_until("status shows [::1] unhealthy", 10, || {
        addresses().contains(&(a6.clone(), "unhealthy".into()))
    });
    assert!(addresses().contains(&(a4.clone(), "available".into())));

    // The name loses ::1: that member leaves the pool.
    std::fs::write(&hosts, "127.0.0.1 twin.pool.test\n").unwrap();
    wait_until("::1 leaves the pool", 10, || addresses().len() == 1);
    assert_eq!(addresses()[0].0, a4);
    // It comes back with a live backend: a new member, in service.
    let _v6 = Backend::start("v6", "::1", port);
    std::fs::write(&hosts, both).unwrap();
    wait_until("::1 joins the pool again", 10, || {
        addresses().contains(&(a6.clone(), "available".into()))
    });
    let counts = spread(&gw, 100);
    eprintln!("after ::1 came back: {counts:?}");
    assert!(counts.get("v6").copied().unwrap_or(0) >= 40, "{counts:?}");
    drop(v4);
}
