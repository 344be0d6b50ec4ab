//! `ip-filter` and client-IP keyed limits apply the XDP program's source
//! state (pinned deny list, bans, allow list). XDP is attached to the
//! gateway's LAN interface; the clients here reach the proxy over the
//! namespace's loopback, a path XDP does not see, so what refuses them is
//! the proxy's own check (an HTTP 403 with a JSON body), not a dropped
//! packet. Loopback sources 127.0.0.x are picked with `curl --interface`.

use std::time::{Duration, Instant};

use edgegw_tests::{
    lan::Lan,
    netns::NetNs,
    pins::PinGuard,
    process::{Daemon, TempDir, edgegw, edgegw_bin},
};

const DENIED: &str = "127.0.0.2";
const ALLOWED: &str = "127.0.0.3";
const OTHER: &str = "127.0.0.4";

/// Status and body of one GET of `path` from source address `from`.
fn get(ns: &NetNs, from: &str, path: &str) -> (String, String) {
    let url = format!("http://127.0.0.1:8080{path}");
    let out = ns
        .command(&[
            "curl",
            "-s",
            "--max-time",
            "5",
            "--interface",
            from,
            "-w",
            "\n%{http_code}",
            &url,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (status.to_string(), body.to_string())
}

/// Polls until `path` from `from` answers `want` (the proxy caches each
/// address's XDP state for 100 ms); panics after 3 s.
fn wait_status(ns: &NetNs, from: &str, path: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (status, body) = get(ns, from, path);
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{from} {path}: {status} {body}, wanted {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_ok(args: &[&str]) {
    let out = edgegw(args);
    assert!(
        out.status.success(),
        "edgegw {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ip_filter_and_client_ip_limits_follow_xdp_lists_and_bans() {
    let lan = Lan::new();
    let gw = NetNs::new("gw");
    let iface = lan.join(&gw, 1);
    let _pins = PinGuard::new(&iface);
    let tmp = TempDir::new("xdpst");
    let catalog = tmp.write(
        "catalog.yaml",
        "apis:\n\
         \x20 - name: filtered\n\
         \x20   subscription_required: false\n\
         \x20   policies:\n\
         \x20     inbound:\n\
         \x20       - ip-filter: {action: forbid, addresses: [203.0.113.0/24]}\n\
         \x20 - name: limited\n\
         \x20   subscription_required: false\n\
         \x20   policies:\n\
         \x20     inbound:\n\
         \x20       - rate-limit-by-key: {calls: 1, renewal_period: 600, counter_key: \"{client_ip}\"}\n",
    );
    let cfg = tmp.write(
        "edgegw.toml",
        &format!(
            "[gateway]\nlisten = \"0.0.0.0:8080\"\ndrain_timeout_secs = 2\n\
             [xdp]\niface = \"{iface}\"\nmode = \"native\"\ndetach_on_exit = true\n\
             [dos]\nallow = [\"{ALLOWED}/32\"]\ndeny = [\"{DENIED}/32\"]\n\
             [[apis]]\nname = \"filtered\"\npath = \"/filtered\"\nbackend = \"http://127.0.0.1:8081\"\n\
             [[apis]]\nname = \"limited\"\npath = \"/limited\"\nbackend = \"http://127.0.0.1:8081\"\n\
             [demo_backend]\nlisten = \"127.0.0.1:8081\"\n\
             [catalog]\nfile = \"{}\"\n",
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

    // Unlisted: served.
    assert_eq!(get(&gw, "127.0.0.1", "/filtered/x").0, "200");
    // On XDP's deny list: ip-filter answers 403 although its own list
    // does not name the address.
    let (status, body) = get(&gw, DENIED, "/filtered/x");
    assert_eq!(status, "403", "{body}");
    assert!(body.contains("denied or banned"), "{body}");

    // `edgegw ban` reaches the proxy within the cache's 100 ms ...
    run_ok(&["ban", "127.0.0.1/32", "--for", "10m", "--iface", &iface]);
    let body = wait_status(&gw, "127.0.0.1", "/filtered/x", "403");
    assert!(body.contains("denied or banned"), "{body}");
    // ... and so does `edgegw unban`.
    run_ok(&["unban", "127.0.0.1/32", "--iface", &iface]);
    wait_status(&gw, "127.0.0.1", "/filtered/x", "200");

    // A limit keyed by client IP: one call per 10 minutes ...
    assert_eq!(get(&gw, OTHER, "/limited/x").0, "200");
    let (status, body) = get(&gw, OTHER, "/limited/x");
    assert_eq!(status, "429", "{body}");
    // ... bypassed by XDP's allow list ...
    for _ in 0..3 {
        assert_eq!(get(&gw, ALLOWED, "/limited/x").0, "200");
    }
    // ... and refusing what XDP denies or has banned.
    let (status, body) = get(&gw, DENIED, "/limited/x");
    assert_eq!(status, "403", "{body}");
    run_ok(&["ban", "127.0.0.5/32", "--for", "10m", "--iface", &iface]);
    let body = wait_status(&gw, "127.0.0.5", "/limited/x", "403");
    assert!(body.contains("denied or banned"), "{body}");
    // The allow list wins over a ban, as in XDP.
    run_ok(&["ban", "127.0.0.0/24", "--for", "10m", "--iface", &iface]);
    wait_status(&gw, "127.0.0.1", "/filtered/x", "403");
    assert_eq!(get(&gw, ALLOWED, "/filtered/x").0, "200");
    assert_eq!(daemon.stop(), Some(0));
}
