//! SIGHUP applies a changed `[dos]` section to the running program's maps:
//! the same program stays attached (same id), the proxy keeps serving, an
//! invalid file is rejected whole and the last good policy stays.

use std::time::{Duration, Instant};

use edgegw_tests::{
    lan::Lan,
    netns::NetNs,
    pins::PinGuard,
    process::{Daemon, TempDir, edgegw_bin},
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
    daemon.signal(libc::SIGHUP);
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
