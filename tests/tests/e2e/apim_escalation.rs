//! Escalation: a client that keeps failing authentication is banned in XDP
//! (its SYNs drop, `edgegw drops` counts `banned`, `edgegw bans` lists it,
//! `edgegw unban` lifts it) while another client is served throughout.

use edgegw_tests::{
    lan::Lan,
    netns::NetNs,
    pins::PinGuard,
    process::{Daemon, TempDir, edgegw, edgegw_bin, edgegw_json},
};

const GW: u8 = 1;
const CLIENT: u8 = 2;
const ABUSER: u8 = 3;
// `edgegw catalog hash-key demo-key`
const DEMO_KEY_SHA256: &str = "c48a01f49fd0f2cc404bc3cbbc80e91457a3d41bb429a695243de4c61794155c";

/// HTTP status of one GET from `ns` (000 when the connection fails).
fn status(ns: &NetNs, key: Option<&str>) -> String {
    let url = format!("http://{}:8080/orders/1", Lan::ip(GW));
    let mut argv = vec![
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "2",
    ];
    let header;
    if let Some(k) = key {
        header = format!("Ocp-Apim-Subscription-Key: {k}");
        argv.extend(["-H", &header]);
    }
    argv.push(&url);
    let out = ns.command(&argv).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn repeated_401s_ban_the_client_in_xdp_and_others_are_unaffected() {
    let lan = Lan::new();
    let gw = NetNs::new("gw");
    let client = NetNs::new("cl");
    let abuser = NetNs::new("ab");
    let iface = lan.join(&gw, GW);
    lan.join(&client, CLIENT);
    lan.join(&abuser, ABUSER);
    let _pins = PinGuard::new(&iface);
    let tmp = TempDir::new("escal");
    let catalog = tmp.write(
        "catalog.yaml",
        &format!(
            "apis:\n  - name: demo\n    subscription_required: true\n\
             subscriptions:\n  - id: alice\n    scope: api:demo\n    primary_key_sha256: {DEMO_KEY_SHA256}\n    state: active\n"
        ),
    );
    let cfg = tmp.write(
        "edgegw.toml",
        &format!(
            "[gateway]\nlisten = \"0.0.0.0:8080\"\ndrain_timeout_secs = 2\n\
             [xdp]\niface = \"{iface}\"\nmode = \"native\"\ndetach_on_exit = true\n\
             [[apis]]\nname = \"demo\"\npath = \"/\"\nbackend = \"http://127.0.0.1:8081\"\n\
             [demo_backend]\nlisten = \"127.0.0.1:8081\"\n\
             [catalog]\nfile = \"{}\"\n\
             [escalation]\nstatuses = [401, 403]\nthreshold = 5\nwindow_secs = 60\nban_secs = 600\n",
            catalog.display()
        ),
    );
    let cmd = gw.command(&[
        edgegw_bin().to_str().unwrap(),
        "run",
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    daemon.wait_ready();

    // Five wrong keys are tolerated, the sixth bans.
    for i in 0..6 {
        assert_eq!(
            status(&abuser, Some("wrong")),
            "401",
            "attempt {i}: {}",
            daemon.log_text()
        );
        assert_eq!(status(&client, Some("demo-key")), "200");
    }
    let bans = edgegw_json(&["bans", "--iface", &iface, "--json"]);
    let abuser_cidr = format!("{}/32", Lan::ip(ABUSER));
    assert!(bans.to_string().contains(&abuser_cidr), "{bans}");

    // The banned client's SYNs drop in XDP; the other client is served.
    let before =
        edgegw_json(&["drops", "--iface", &iface, "--json"])["reasons"]["banned"]["packets"]
            .as_u64()
            .unwrap();
    assert_eq!(status(&abuser, Some("demo-key")), "000");
    assert_eq!(status(&client, Some("demo-key")), "200");
    let after =
        edgegw_json(&["drops", "--iface", &iface, "--json"])["reasons"]["banned"]["packets"]
            .as_u64()
            .unwrap();
    assert!(after > before, "no banned drops: {before} -> {after}");

    // Reversible with the operator CLI.
    let out = edgegw(&["unban", &abuser_cidr, "--iface", &iface]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status(&abuser, Some("demo-key")), "200");
    assert!(
        daemon.log_text().contains("banned in XDP"),
        "{}",
        daemon.log_text()
    );
    assert_eq!(daemon.stop(), Some(0));
}
