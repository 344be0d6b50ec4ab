//! The XDP program's log arrives in the daemon's log: the real daemon with
//! native XDP on a veth pair, a fail-open path provoked from outside (a
//! port group `GROUPS` has no limits for, written into the pinned `PORTS`
//! map as a daemon of another layout would), real TCP connections from a
//! peer namespace. The line arrives under `edgegw::xdp`, and a burst of such
//! packets logs at most once per CPU and second.

use std::{
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use aya::maps::{Array, Map, MapData};
use edgegw_tests::{
    netns::{NetNs, Veth},
    pins::PinGuard,
    process::{Daemon, TempDir, edgegw_bin},
};
use gateway_common::{PORTS_MAP, PROTO_TCP, PortKey};

const PORT: u16 = 8080;
/// No `GROUPS` slot (there are `MAX_GROUPS`, 16).
const BAD_GROUP: u32 = 200;

/// The daemon's `edgegw::xdp` lines that name the bad group.
fn xdp_lines(daemon: &Daemon) -> Vec<serde_json::Value> {
    daemon
        .log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["target"] == "edgegw::xdp"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&format!("port group {BAD_GROUP}")))
        })
        .collect()
}

/// Opens (and closes) `n` TCP connections from `peer` to `to`: every
/// packet of them goes through the program's buckets.
fn connect(peer: &NetNs, to: SocketAddr, n: usize) {
    peer.run_in(move || {
        for _ in 0..n {
            TcpStream::connect_timeout(&to, Duration::from_secs(2))
                .unwrap_or_else(|e| panic!("connecting to {to}: {e}"));
        }
    });
}

#[test]
fn a_fail_open_path_is_logged_by_the_daemon_rate_limited() {
    let gw = NetNs::new("gw");
    let peer = NetNs::new("pe");
    let veth = Veth::new(&gw, &peer);
    let _pins = PinGuard::new(&veth.a);
    let tmp = TempDir::new("xdp-log");
    let config = tmp.write(
        "edgegw.toml",
        &format!(
            r#"[gateway]
listen = "0.0.0.0:{PORT}"
drain_timeout_secs = 2
[xdp]
iface = "{}"
mode = "native"
[[apis]]
name = "demo"
path = "/"
backend = "http://127.0.0.1:8081"
[demo_backend]
listen = "127.0.0.1:8081"
[dos]
packets_per_sec = 100000
packet_burst = 100000
"#,
            veth.a
        ),
    );
    let cmd = gw.command(&[
        edgegw_bin().to_str().unwrap(),
        "run",
        "--config",
        config.to_str().unwrap(),
    ]);
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    daemon.wait_ready();
    let to: SocketAddr = format!("{}:{PORT}", veth.a_ip).parse().unwrap();

    // The healthy path logs nothing.
    connect(&peer, to, 3);
    std::thread::sleep(Duration::from_millis(300));
    assert!(xdp_lines(&daemon).is_empty(), "{}", daemon.log_text());

    let mut ports: Array<MapData, u32> = Array::try_from(Map::Array(
        MapData::from_pin(_pins.dir().join(PORTS_MAP)).expect("the pinned PORTS map"),
    ))
    .unwrap();
    let slot = PortKey {
        proto: PROTO_TCP,
        _pad: 0,
        port: PORT,
    }
    .slot();
    ports.set(slot, BAD_GROUP, 0).unwrap();

    // Fail open: the connections still succeed, and the daemon logs why.
    let started = Instant::now();
    connect(&peer, to, 20);
    let deadline = Instant::now() + Duration::from_secs(5);
    while xdp_lines(&daemon).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no edgegw::xdp line about port group {BAD_GROUP}:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let lines = xdp_lines(&daemon);
    let first = &lines[0];
    assert_eq!(first["level"], "ERROR", "{first}");
    assert!(
        first["message"].as_str().unwrap().contains("fail open"),
        "{first}"
    );
    // 20 connections are well over 60 packets on port 8080; the gate lets
    // through at most one line per CPU for each second (or part) elapsed.
    let seconds = started.elapsed().as_secs() + 1;
    let cpus = aya::util::nr_cpus().expect("possible CPUs") as u64;
    let bound = (cpus * (seconds + 1)) as usize;
    assert!(
        lines.len() <= bound,
        "{} lines in {seconds} s on {cpus} CPUs (at most {bound}): {lines:#?}",
        lines.len()
    );
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log_text());
}
