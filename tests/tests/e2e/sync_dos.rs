//! A DoS profile change on the control plane reaches a managed gateway's
//! XDP maps in place: the control plane, the gateway and its XDP program
//! (native, on a veth) live in one namespace, a client in another. After
//! the gateway's profile switches to one that denies the client, its
//! packets drop as `denied` (`edgegw drops`); switching back lets it in.

use std::time::{Duration, Instant};

use edgegw_tests::{
    cp::{ControlPlane, Db, Store},
    managed::{ManagedNode, admin_ok, api_doc, register},
    netns::{NetNs, Veth},
    pins::PinGuard,
    process::{TempDir, edgegw},
};
use serde_json::json;

edgegw_tests::on_both_stores!(a_dos_profile_change_reaches_the_xdp_maps);

fn denied(iface: &str) -> u64 {
    let out = edgegw(&["drops", "--iface", iface, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["reasons"]["denied"]["packets"].as_u64().unwrap()
}

/// Whether the client reaches the gateway's address: a TCP connection to
/// a closed port is refused (reachable) or times out (dropped by XDP).
fn reaches(client: &NetNs, ip: &str) -> bool {
    let out = client
        .command(&[
            "curl",
            "-sS",
            "--connect-timeout",
            "1",
            &format!("http://{ip}:9/"),
        ])
        .output()
        .unwrap();
    match out.status.code() {
        Some(7) => true,   // connection refused: the SYN got through
        Some(28) => false, // timeout: dropped
        other => panic!("curl: {other:?} {}", String::from_utf8_lossy(&out.stderr)),
    }
}

fn a_dos_profile_change_reaches_the_xdp_maps(store: Store) {
    let gw = NetNs::new("sgw");
    let client = NetNs::new("scl");
    let veth = Veth::new(&gw, &client);
    let _pins = PinGuard::new(&veth.a);
    let tmp = TempDir::new("syncdos");
    let (dir, iface, gw_ip) = (tmp.0.clone(), veth.a.clone(), veth.a_ip.clone());
    // Everything of the node runs inside its namespace (children inherit
    // the thread's namespace); the client connects from its own.
    gw.run_in(move || {
        // Inside the namespace 127.0.0.1 is its own: PostgreSQL is reached
        // over its socket.
        let cp = ControlPlane::on(Db::new(store, &dir).over_socket(), &dir, &[]);
        let limits = json!({"packets_per_sec": 100000, "packet_burst": 100000});
        admin_ok(&cp, "PUT", "/v1/dos-profiles/open", limits.clone());
        let mut strict = limits;
        strict["deny"] = json!(["10.200.0.2/32"]);
        admin_ok(&cp, "PUT", "/v1/dos-profiles/strict", strict);
        admin_ok(
            &cp,
            "PUT",
            "/v1/apis/hello",
            api_doc("hello", "/hello", "hi", json!([])),
        );
        let token = register(&cp, "gw-a", &["hello"], Some("open"));
        let xdp = format!("[xdp]\niface = \"{iface}\"\nmode = \"native\"\ndetach_on_exit = true\n");
        let mut node = ManagedNode::of("gw-a", &cp, &token, &xdp);
        node.start();
        node.wait_body("/hello", "hi", 20);
        assert!(
            reaches(&client, &gw_ip),
            "the open profile lets the client in"
        );
        let before = denied(&iface);

        let assign = |profile: &str| {
            let body = json!({"apis": ["hello"], "dos_profile": profile});
            admin_ok(&cp, "PUT", "/v1/gateways/gw-a", body);
        };
        assign("strict");
        let deadline = Instant::now() + Duration::from_secs(30);
        while reaches(&client, &gw_ip) {
            assert!(
                Instant::now() < deadline,
                "still reachable:\n{}",
                node.log()
            );
        }
        assert!(denied(&iface) > before, "dropped as denied by XDP");
        // The heartbeat reports XDP's counters to the control plane.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, gw) = cp.admin("GET", "/v1/gateways/gw-a", None);
            if gw["heartbeat"]["xdp"]["denied"]
                .as_u64()
                .is_some_and(|d| d > before)
            {
                break;
            }
            assert!(Instant::now() < deadline, "{gw}");
            std::thread::sleep(Duration::from_millis(200));
        }

        assign("open");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !reaches(&client, &gw_ip) {
            assert!(Instant::now() < deadline, "still denied:\n{}", node.log());
        }
        node.stop();
    });
}
