//! `edgegw status`, `edgegw log-level` and `edgegw config validate` through
//! the real binary, against a real daemon attached to a veth.

use std::{
    path::Path,
    process::Output,
    time::{Duration, Instant},
};

use edgegw_tests::{
    netns::{NetNs, Veth},
    process::{Daemon, TempDir, assert_one_line_error, edgegw, edgegw_bin},
};

fn config(listen: &str, iface: &str) -> String {
    format!(
        "[gateway]\nlisten = \"{listen}\"\ndrain_timeout_secs = 2\n[xdp]\niface = \"{iface}\"\nmode = \"native\"\ndetach_on_exit = true\n[[apis]]\nname = \"demo\"\npath = \"/\"\nbackend = \"http://127.0.0.1:8081\"\n[demo_backend]\nlisten = \"127.0.0.1:8081\"\n"
    )
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Info-level lines the daemon logs on each SIGHUP reload.
fn reload_lines(daemon: &Daemon) -> usize {
    daemon
        .log_text()
        .lines()
        .filter(|l| l.contains("\"message\":\"configuration reloaded\""))
        .count()
}

#[test]
fn status_and_runtime_log_level_of_a_running_daemon() {
    let gw = NetNs::new("st");
    let client = NetNs::new("st");
    let veth = Veth::new(&gw, &client);
    let tmp = TempDir::new("status");
    let cfg = tmp.write("edgegw.toml", &config("0.0.0.0:8080", &veth.a));
    let run = tmp.0.join("run");
    let run_s = run.to_str().unwrap();

    let mut cmd = gw.command(&[
        edgegw_bin().to_str().unwrap(),
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--runtime-dir",
        run_s,
    ]);
    cmd.env("EDGEGW_LOG", "info")
        .env_remove("EDGEGW_LOG_FORMAT");
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    daemon.wait_ready();
    let url = format!("http://{}:8080/orders/1", veth.a_ip);
    let curl = || client.exec(&["curl", "-sS", "--fail", "--max-time", "5", &url]);
    for _ in 0..5 {
        curl();
    }

    // Not a terminal: JSON lines, with timestamps (not under journald).
    let first = daemon.log_text().lines().next().unwrap().to_string();
    let line: serde_json::Value = serde_json::from_str(&first).expect("JSON log lines");
    assert!(line["timestamp"].is_string(), "{first}");

    let s: serde_json::Value =
        serde_json::from_str(&ok(&edgegw(&["status", "--json", "--runtime-dir", run_s]))).unwrap();
    assert_eq!(s["pid"], daemon.child.id());
    assert_eq!(s["state"], "serving");
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(s["uptime_secs"].as_u64().unwrap() < 600);
    assert_eq!(s["config"]["source"], "file");
    assert_eq!(s["config"]["version"].as_str().unwrap().len(), 16);
    assert!(
        s["config"]["path"]
            .as_str()
            .unwrap()
            .ends_with("edgegw.toml")
    );
    assert_eq!(s["last_sync"]["ok"], true);
    assert_eq!(s["listeners"][0]["name"], "gateway");
    assert_eq!(s["listeners"][0]["addr"], "0.0.0.0:8080");
    assert_eq!(s["listeners"][1]["addr"], "127.0.0.1:8081");
    assert_eq!(s["xdp"]["iface"], veth.a.as_str());
    assert_eq!(s["xdp"]["mode"], "native");
    assert!(s["xdp"]["program_id"].as_u64().unwrap() > 0, "{s}");
    assert!(
        s["xdp"]["totals"]["passed"]["packets"].as_u64().unwrap() >= 5,
        "{s}"
    );
    assert!(s["xdp"]["totals"]["dropped"]["packets"].is_u64());
    assert_eq!(s["log_level"], "info");

    let text = ok(&edgegw(&["status", "--runtime-dir", run_s]));
    for want in ["serving", "program", &veth.a, "0.0.0.0:8080", "dropped"] {
        assert!(text.contains(want), "{want} not in:\n{text}");
    }

    // Runtime log level: at warn a reload's info line is hidden, at debug it
    // shows. Signals are handled in order, so if the first reload had been
    // logged the count would grow by two.
    let before = reload_lines(&daemon);
    ok(&edgegw(&["log-level", "warn", "--runtime-dir", run_s]));
    assert!(daemon.log_text().contains("log level changed"));
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    ok(&edgegw(&["log-level", "debug", "--runtime-dir", run_s]));
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    while reload_lines(&daemon) == before {
        assert!(Instant::now() < deadline, "no reload line at debug");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        reload_lines(&daemon),
        before + 1,
        "the reload at warn was logged"
    );
    let s: serde_json::Value =
        serde_json::from_str(&ok(&edgegw(&["status", "--json", "--runtime-dir", run_s]))).unwrap();
    assert_eq!(s["log_level"], "debug");
    assert_one_line_error(
        &edgegw(&["log-level", "verbose", "--runtime-dir", run_s]),
        &["invalid log level \"verbose\""],
    );

    assert_eq!(daemon.stop(), Some(0));
    assert_one_line_error(
        &edgegw(&["status", "--runtime-dir", run_s]),
        &["edgegw is not running"],
    );
    assert!(!run.exists(), "runtime directory left behind");
}

#[test]
fn status_without_a_daemon() {
    let tmp = TempDir::new("nostatus");
    assert_one_line_error(
        &edgegw(&["status", "--runtime-dir", tmp.0.to_str().unwrap()]),
        &["edgegw is not running: no status file in"],
    );
    // A status file left by a daemon that died: its pid is checked.
    let child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    let _ = child.wait_with_output();
    tmp.write(
        "status.json",
        &format!(
            r#"{{"pid":{pid},"version":"0","started_at":0,"state":"serving","config":{{"path":"/x","source":"file","version":"0"}},"xdp":null,"listeners":[],"last_sync":{{"at":0,"ok":true,"message":""}},"log_level":"info"}}"#
        ),
    );
    assert_one_line_error(
        &edgegw(&["status", "--json", "--runtime-dir", tmp.0.to_str().unwrap()]),
        &[&format!("pid {pid}")],
    );
}

#[test]
fn config_validate_checks_a_file_without_a_daemon() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for shipped in ["config/edgegw.toml", "dist/edgegw.toml"] {
        let path = root.join(shipped);
        let out = ok(&edgegw(&["config", "validate", path.to_str().unwrap()]));
        assert!(out.contains("valid"), "{shipped}: {out}");
    }
    let tmp = TempDir::new("validate");
    let good = tmp.write("good.toml", &config("127.0.0.1:1", "eth9"));
    let out = ok(&edgegw(&["config", "validate", good.to_str().unwrap()]));
    assert!(out.contains("1 API(s)") && out.contains("eth9"), "{out}");
    let bad = tmp.write(
        "bad.toml",
        &config("127.0.0.1:1", "lo").replace("path = \"/\"", "path = \"nope\""),
    );
    assert_one_line_error(
        &edgegw(&["config", "validate", bad.to_str().unwrap()]),
        &["bad.toml: api \"demo\": path \"nope\" must start with '/'"],
    );
    assert_one_line_error(
        &edgegw(&["config", "validate", "/nonexistent.toml"]),
        &["cannot read config file /nonexistent.toml"],
    );
}
