//! The real daemon attached to a veth inside a namespace, the demo echo
//! backend behind it, and curl in a peer namespace: requests are answered
//! through the proxy while `edgegw drops` (a second process) sees the
//! counters move; SIGTERM detaches and removes the pins.

use std::path::Path;

use edgegw_tests::{
    netns::{NetNs, Veth},
    process::{Daemon, TempDir, edgegw, edgegw_bin, edgegw_json},
};

fn drops_json(iface: &str) -> serde_json::Value {
    edgegw_json(&["drops", "--iface", iface, "--json"])
}

pub fn gateway_config(listen: &str, iface: &str, mode: &str) -> String {
    format!(
        r#"
[gateway]
listen = "{listen}"
drain_timeout_secs = 5
[xdp]
iface = "{iface}"
mode = "{mode}"
detach_on_exit = true
[[apis]]
name = "demo"
path = "/"
backend = "http://127.0.0.1:8081"
[demo_backend]
listen = "127.0.0.1:8081"
"#
    )
}

#[test]
fn proxies_through_xdp_on_a_veth_and_counts() {
    let gw = NetNs::new("gw");
    let client = NetNs::new("cl");
    let veth = Veth::new(&gw, &client);
    let tmp = TempDir::new("e2e");
    let config = tmp.write(
        "edgegw.toml",
        &gateway_config("0.0.0.0:8080", &veth.a, "native"),
    );

    let mut cmd = gw.command(&[
        edgegw_bin().to_str().unwrap(),
        "run",
        "--config",
        config.to_str().unwrap(),
    ]);
    cmd.env("EDGEGW_LOG", "info");
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    daemon.wait_ready();

    let pins = Path::new("/sys/fs/bpf/edgegw").join(&veth.a);
    assert!(
        pins.join("link").exists() && pins.join("COUNTERS").exists(),
        "pins missing in {}",
        pins.display()
    );
    let link = gw.exec(&["ip", "link", "show", "dev", &veth.a]);
    assert!(link.contains("xdp"), "no XDP program on {}: {link}", veth.a);

    let before = drops_json(&veth.a);
    for i in 0..20 {
        let url = format!("http://{}:8080/orders/{i}?x=1", veth.a_ip);
        let body = client.exec(&["curl", "-sS", "--fail", "--max-time", "5", &url]);
        let answer: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(answer["path"], format!("/orders/{i}"));
        assert_eq!(answer["query"], "x=1");
        assert_eq!(answer["headers"]["x-forwarded-for"], veth.b_ip.as_str());
    }
    let after = drops_json(&veth.a);
    let passed = |v: &serde_json::Value| v["reasons"]["passed"]["packets"].as_u64().unwrap();
    // Each curl is at least SYN, ACK, request, FIN, ACK from the client.
    assert!(
        passed(&after) >= passed(&before) + 20 * 5,
        "passed {} -> {}",
        passed(&before),
        passed(&after)
    );
    assert!(
        after["reasons"]["passed"]["bytes"].as_u64().unwrap()
            > before["reasons"]["passed"]["bytes"].as_u64().unwrap()
    );
    assert_eq!(after["reasons"]["malformed"]["packets"], 0);

    assert_eq!(
        daemon.stop(),
        Some(0),
        "exit code; log:\n{}",
        daemon.log_text()
    );
    assert!(!pins.exists(), "pins left behind after exit");
    let link = gw.exec(&["ip", "link", "show", "dev", &veth.a]);
    assert!(
        !link.contains("prog/xdp"),
        "XDP still attached after exit: {link}"
    );
}

#[test]
fn detach_removes_program_and_pins_from_another_process() {
    let gw = NetNs::new("gw");
    let client = NetNs::new("cl");
    let veth = Veth::new(&gw, &client);
    let tmp = TempDir::new("det");
    let config = tmp.write(
        "edgegw.toml",
        &gateway_config("0.0.0.0:8080", &veth.a, "skb"),
    );
    let cmd = gw.command(&[
        edgegw_bin().to_str().unwrap(),
        "run",
        "--config",
        config.to_str().unwrap(),
    ]);
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    daemon.wait_ready();

    let out = edgegw(&["detach", "--iface", &veth.a]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = gw.exec(&["ip", "link", "show", "dev", &veth.a]);
    assert!(!link.contains("prog/xdp"), "still attached: {link}");
    assert!(!Path::new("/sys/fs/bpf/edgegw").join(&veth.a).exists());

    let out = edgegw(&["drops", "--iface", &veth.a]);
    assert!(!out.status.success());
    daemon.stop();
}
