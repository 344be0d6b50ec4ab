//! SIGHUP applies a changed `[dos]` section to the running program's maps:
//! the same program stays attached (same id), the proxy keeps serving, an
//! invalid file is rejected whole and the last good policy stays; a policy
//! that cannot be written fails the reload just the same.

use std::time::{Duration, Instant};

use edgegw_tests::{
    lan::Lan,
    netns::NetNs,
    pins::PinGuard,
    process::{Daemon, TempDir, edgegw, edgegw_bin, edgegw_json},
};

fn config(iface: &str, dos: &str) -> String {
    format!(
        "[gateway]\nlisten = \"0.0.0.0:8080\"\ndrain_timeout_secs = 2\n[xdp]\niface = \"{iface}\"\nmode = \"native\"\ndetach_on_exit = true\n[[apis]]\nname = \"demo\"\npath = \"/\"\nbackend = \"http://127.0.0.1:8081\"\n[demo_backend]\nlisten = \"127.0.0.1:8081\"\n{dos}\n"
    )
}

fn request_ok(client: &NetNs) -> bool {
    let url = format!("http://{}:8080/ping", Lan::ip(1));
    client
        .command(&["curl", "-sS", "--fail", "--max-time", "2", &url])
        .output()
        .unwrap()
        .status
        .success()
}

/// Sends SIGHUP and waits until the log has one more `needle` line.
fn reload(daemon: &Daemon, needle: &str) {
    let before = daemon.log_text().matches(needle).count();
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.log_text().matches(needle).count() == before {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} after SIGHUP:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn prog_id(gw: &NetNs, iface: &str) -> String {
    let link = gw.exec(&["ip", "link", "show", "dev", iface]);
    let at = link.find("prog/xdp id ").expect("XDP attached") + "prog/xdp id ".len();
    link[at..].split_whitespace().next().unwrap().to_string()
}

#[test]
fn sighup_applies_the_dos_section_in_place() {
    let lan = Lan::new();
    let gw = NetNs::new("gw");
    let client = NetNs::new("cl");
    let iface = lan.join(&gw, 1);
    lan.join(&client, 2);
    let _pins = PinGuard::new(&iface);
    let tmp = TempDir::new("reload");
    let path = tmp.write("edgegw.toml", &config(&iface, "[dos]\nsyn_per_sec = 1000"));
    let cmd = gw.command(&[
        edgegw_bin().to_str().unwrap(),
        "run",
        "--config",
        path.to_str().unwrap(),
    ]);
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    daemon.wait_ready();
    let id = prog_id(&gw, &iface);
    assert!(request_ok(&client));

    // A second daemon on the same interface is refused, and changes nothing.
    let second = config(&iface, "").replace("0.0.0.0:8080", "127.0.0.1:8090");
    let second = second.replace("[demo_backend]\nlisten = \"127.0.0.1:8081\"\n", "");
    let path2 = tmp.write("second.toml", &second);
    let out = gw
        .command(&[
            edgegw_bin().to_str().unwrap(),
            "run",
            "--config",
            path2.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("another edgegw is already running"),
        "{stderr}"
    );
    assert_eq!(prog_id(&gw, &iface), id);
    assert!(request_ok(&client));

    let deny = format!("[dos]\nsyn_per_sec = 1000\ndeny = [\"{}/32\"]", Lan::ip(2));
    tmp.write("edgegw.toml", &config(&iface, &deny));
    reload(&daemon, "DoS policy reloaded");
    assert!(!request_ok(&client), "the denied client still gets through");

    tmp.write("edgegw.toml", &config(&iface, "[dos]\nsyn_per_sec = 0"));
    reload(&daemon, "configuration reload rejected");
    assert!(
        daemon
            .log_text()
            .contains("dos.syn_per_sec: 0 is out of range")
    );
    assert!(
        !request_ok(&client),
        "an invalid reload dropped the last good policy"
    );

    tmp.write("edgegw.toml", &config(&iface, "[dos]\nsyn_per_sec = 1000"));
    reload(&daemon, "DoS policy reloaded");
    assert!(
        request_ok(&client),
        "the client is still denied after the deny was removed"
    );
    assert_eq!(prog_id(&gw, &iface), id, "the program was reloaded");
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log_text());
}

/// A reload whose DoS policy cannot be written (here: `edgegw detach` ran
/// under the daemon, so the pinned maps are gone) fails as a whole: logged
/// and counted as rejected, shown by `edgegw status`, and the previous
/// configuration, routes included, stays in force.
#[test]
fn a_failed_policy_write_fails_the_reload() {
    let lan = Lan::new();
    let gw = NetNs::new("gw");
    let client = NetNs::new("cl");
    let iface = lan.join(&gw, 1);
    lan.join(&client, 2);
    let _pins = PinGuard::new(&iface);
    let tmp = TempDir::new("reload-fail");
    let with_admin = |dos: &str| {
        config(&iface, dos).replace("[[apis]]", "[admin]\nlisten = \"127.0.0.1:9901\"\n[[apis]]")
    };
    let path = tmp.write("edgegw.toml", &with_admin("[dos]\nsyn_per_sec = 1000"));
    let run = tmp.0.join("run");
    let cmd = gw.command(&[
        edgegw_bin().to_str().unwrap(),
        "run",
        "--config",
        path.to_str().unwrap(),
        "--runtime-dir",
        run.to_str().unwrap(),
    ]);
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    daemon.wait_ready();
    assert!(request_ok(&client));

    let out = edgegw(&["detach", "--iface", &iface]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A new DoS policy and a route change in the same file.
    let changed = with_admin("[dos]\nsyn_per_sec = 500").replace("path = \"/\"", "path = \"/v2\"");
    tmp.write("edgegw.toml", &changed);
    reload(&daemon, "configuration reload rejected");
    let log = daemon.log_text();
    let last = log.lines().last().unwrap();
    assert!(
        last.contains("writing the DoS policy") && last.contains(&iface),
        "{last}"
    );
    assert!(!log.contains("DoS policy reloaded"), "{log}");
    assert!(!log.contains("configuration reloaded"), "{log}");

    let metrics = gw.exec(&[
        "curl",
        "-sS",
        "--max-time",
        "5",
        "http://127.0.0.1:9901/metrics",
    ]);
    assert!(
        metrics.contains("edgegw_config_reloads_total{result=\"rejected\"} 1")
            && metrics.contains("edgegw_config_reloads_total{result=\"ok\"} 0"),
        "{metrics}"
    );
    let status = edgegw_json(&["status", "--json", "--runtime-dir", run.to_str().unwrap()]);
    assert_eq!(status["last_sync"]["ok"], false, "{status}");
    assert!(
        status["last_sync"]["message"]
            .as_str()
            .unwrap()
            .contains("writing the DoS policy"),
        "{status}"
    );
    // The old routes still serve: nothing of the rejected file applied.
    assert!(
        request_ok(&client),
        "the previous configuration was replaced"
    );
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log_text());
}
