//! The real daemon on a LAN segment (a bridge joining three namespaces):
//! a bounded hping3 SYN flood from an attacker while a legitimate client
//! makes HTTP requests through the proxy. Then the daemon is SIGKILLed
//! mid-flood (the pinned program keeps dropping), a ban is written by the
//! CLI while no daemon runs, and a restarted daemon adopts the pinned
//! program and maps with counters, buckets and bans intact.

use std::{
    process::{Child, Stdio},
    time::Duration,
};

use edgegw_tests::{
    lan::Lan,
    netns::NetNs,
    pins::PinGuard,
    process::{Daemon, TempDir, edgegw, edgegw_bin, edgegw_json},
};

const GW: u8 = 1;
const CLIENT: u8 = 2;
const ATTACKER: u8 = 3;

fn config(iface: &str) -> String {
    format!(
        r#"
[gateway]
listen = "0.0.0.0:8080"
drain_timeout_secs = 2
[xdp]
iface = "{iface}"
mode = "native"
[[apis]]
name = "demo"
path = "/"
backend = "http://127.0.0.1:8081"
[demo_backend]
listen = "127.0.0.1:8081"
[dos]
packets_per_sec = 5000
packet_burst = 5000
syn_per_sec = 20
syn_burst = 60
"#
    )
}

fn reason(drops: &serde_json::Value, name: &str) -> u64 {
    drops["reasons"][name]["packets"].as_u64().unwrap()
}

/// A SYN flood bounded in count (and by `timeout` in time).
fn flood(attacker: &NetNs, count: u32) -> Child {
    let count = count.to_string();
    let target = Lan::ip(GW);
    attacker
        .command(&[
            "timeout", "30", "hping3", "-q", "-S", "-p", "8080", "-i", "u100", "-c", &count,
            &target,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hping3 (cargo xtask setup installs it)")
}

/// Waits for a flood; hping3 exits 1 when nothing answered (a dropped
/// flood), `timeout` exits 124 when the bound was hit.
fn finish(mut hping: Child) {
    let status = hping.wait().unwrap();
    assert!(matches!(status.code(), Some(0 | 1)), "hping3: {status}");
}

fn limited(drops: &serde_json::Value) -> u64 {
    reason(drops, "syn_rate_limited") + reason(drops, "rate_limited")
}

fn legit_requests(client: &NetNs, n: usize) {
    for i in 0..n {
        let url = format!("http://{}:8080/orders/{i}", Lan::ip(GW));
        let body = client.exec(&["curl", "-sS", "--fail", "--max-time", "5", &url]);
        assert!(body.contains(&format!("/orders/{i}")), "{body}");
    }
}

fn prog_id(gw: &NetNs, iface: &str) -> String {
    let link = gw.exec(&["ip", "link", "show", "dev", iface]);
    let at = link.find("prog/xdp id ").expect("XDP attached") + "prog/xdp id ".len();
    link[at..].split_whitespace().next().unwrap().to_string()
}

fn start(gw: &NetNs, config: &std::path::Path, log: std::path::PathBuf) -> Daemon {
    let cmd = gw.command(&[
        edgegw_bin().to_str().unwrap(),
        "run",
        "--config",
        config.to_str().unwrap(),
    ]);
    let mut daemon = Daemon::spawn(cmd, log);
    daemon.wait_ready();
    daemon
}

#[test]
fn flood_is_dropped_while_clients_are_served_across_sigkill_and_restart() {
    let lan = Lan::new();
    let gw = NetNs::new("gw");
    let client = NetNs::new("cl");
    let attacker = NetNs::new("at");
    let iface = lan.join(&gw, GW);
    lan.join(&client, CLIENT);
    lan.join(&attacker, ATTACKER);
    let pins = PinGuard::new(&iface);
    let tmp = TempDir::new("flood");
    let cfg = tmp.write("edgegw.toml", &config(&iface));
    let mut daemon = start(&gw, &cfg, tmp.0.join("daemon1.log"));

    // 1. Flood and legitimate traffic at the same time.
    let hping = flood(&attacker, 30_000);
    std::thread::sleep(Duration::from_millis(300));
    legit_requests(&client, 20);
    finish(hping);
    let drops = edgegw_json(&["drops", "--iface", &iface, "--json"]);
    assert!(limited(&drops) >= 29_000, "flood not rate limited: {drops}");
    let top = edgegw_json(&["top", "--iface", &iface, "--json", "--limit", "5"]);
    let sources = top["sources"].as_array().unwrap();
    assert_eq!(sources[0]["source"], Lan::ip(ATTACKER), "{top}");
    assert!(sources[0]["dropped"].as_u64().unwrap() >= 29_000, "{top}");
    let legit = sources
        .iter()
        .find(|s| s["source"] == Lan::ip(CLIENT))
        .expect("client in top");
    assert_eq!(
        legit["dropped"], 0,
        "the legitimate client lost packets: {top}"
    );

    // 2. SIGKILL mid-flood: the pinned program keeps enforcing the policy.
    let first_prog = prog_id(&gw, &iface);
    let hping = flood(&attacker, 30_000);
    std::thread::sleep(Duration::from_millis(300));
    daemon.signal(nix::sys::signal::Signal::SIGKILL);
    daemon.child.wait().unwrap();
    let at_kill = limited(&edgegw_json(&["drops", "--iface", &iface, "--json"]));
    finish(hping);
    let after = edgegw_json(&["drops", "--iface", &iface, "--json"]);
    assert!(
        limited(&after) > at_kill + 20_000,
        "flood not dropped after SIGKILL: {at_kill} -> {after}"
    );
    assert!(
        gw.exec(&["ip", "link", "show", "dev", &iface])
            .contains("xdp")
    );

    // 3. The CLI bans while no daemon runs; the ban holds at once.
    let attacker_cidr = format!("{}/32", Lan::ip(ATTACKER));
    let out = edgegw(&["ban", &attacker_cidr, "--for", "10m", "--iface", &iface]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hping = flood(&attacker, 500);
    finish(hping);
    let banned = edgegw_json(&["drops", "--iface", &iface, "--json"]);
    assert!(reason(&banned, "banned") >= 500, "{banned}");

    // 4. Restart: the pinned program and maps are adopted, nothing reset.
    let mut daemon = start(&gw, &cfg, tmp.0.join("daemon2.log"));
    assert!(
        daemon.log_text().contains("adopted the pinned XDP program"),
        "{}",
        daemon.log_text()
    );
    // The new program replaced the old one on the same link: one attachment.
    let link = gw.exec(&["ip", "link", "show", "dev", &iface]);
    assert_eq!(link.matches("prog/xdp").count(), 1, "{link}");
    assert_ne!(
        prog_id(&gw, &iface),
        first_prog,
        "the program was not replaced"
    );
    let restarted = edgegw_json(&["drops", "--iface", &iface, "--json"]);
    for name in ["passed", "syn_rate_limited", "banned"] {
        assert!(
            reason(&restarted, name) >= reason(&banned, name),
            "{name} reset: {restarted}"
        );
    }
    let bans = edgegw_json(&["bans", "--iface", &iface, "--json"]);
    assert_eq!(bans["bans"][0]["cidr"], attacker_cidr.as_str(), "{bans}");
    let top = edgegw_json(&["top", "--iface", &iface, "--json"]);
    assert!(
        top["sources"][0]["dropped"].as_u64().unwrap() >= 55_000,
        "buckets reset: {top}"
    );
    legit_requests(&client, 5);
    let hping = flood(&attacker, 200);
    finish(hping);
    let end = edgegw_json(&["drops", "--iface", &iface, "--json"]);
    assert!(
        reason(&end, "banned") >= reason(&restarted, "banned") + 200,
        "{end}"
    );

    // 5. A clean stop leaves the protection pinned; detach removes it.
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log_text());
    assert!(pins.dir().join("link").exists(), "pins removed on exit");
    let out = edgegw(&["detach", "--iface", &iface]);
    assert!(out.status.success());
    assert!(!pins.dir().exists());
    assert!(
        !gw.exec(&["ip", "link", "show", "dev", &iface])
            .contains("prog/xdp")
    );
}
