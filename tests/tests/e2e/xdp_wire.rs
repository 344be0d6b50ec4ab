//! The real daemon with native XDP, checked the way a peer on the link
//! sees it:
//!
//! - crafted frames behind VLAN ID 0 tags, which the kernel strips at any
//!   depth and answers: a denied source gets no answer where an allowed
//!   one is answered, and a stack deeper than the program walks gets none;
//! - the node's own connections through an interface whose policy drops
//!   unprotected ports: the proxy reaches its backend, a process on the node
//!   reaches a server, a resolver's answer arrives, and what is not a reply
//!   stays dropped.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, TcpListener, UdpSocket},
    process::Output,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use edgegw_tests::{
    lan::Lan,
    netns::{NetNs, Veth},
    pins::PinGuard,
    process::{Daemon, TempDir, edgegw_bin, edgegw_json},
    wire::{RawSocket, is_syn_ack, mac, tagged_syn},
};

const GW: u8 = 1;

fn ip(host: u8) -> Ipv4Addr {
    Lan::ip(host).parse().unwrap()
}

fn start(gw: &NetNs, tmp: &TempDir, config: &str) -> Daemon {
    let path = tmp.write("edgegw.toml", config);
    let cmd = gw.command(&[
        edgegw_bin().to_str().unwrap(),
        "run",
        "--config",
        path.to_str().unwrap(),
    ]);
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    daemon.wait_ready();
    daemon
}

fn drops(iface: &str, reason: &str) -> u64 {
    let v = edgegw_json(&["drops", "--iface", iface, "--json"]);
    v["reasons"][reason]["packets"].as_u64().unwrap()
}

/// Sends one SYN per source port from `src` behind `tags` out of
/// `iface` of `ns`, to `dst`:8080; returns the source ports that got a
/// SYN-ACK back.
fn syns_answered(
    ns: &NetNs,
    iface: &str,
    src: Ipv4Addr,
    (dst, dst_mac): (Ipv4Addr, [u8; 6]),
    tags: &[(u16, u16)],
    ports: &[u16],
) -> Vec<u16> {
    let sock = RawSocket::open(ns, iface);
    let own = mac(ns, iface);
    for &port in ports {
        sock.send(&tagged_syn((own, dst_mac), (src, port), (dst, 8080), tags));
    }
    let answers = sock.collect(Duration::from_millis(1500), |f| {
        ports.iter().any(|&p| is_syn_ack(f, (dst, 8080), (src, p)))
    });
    ports
        .iter()
        .copied()
        .filter(|&p| answers.iter().any(|f| is_syn_ack(f, (dst, 8080), (src, p))))
        .collect()
}

/// On a veth pair, so that the program sees every tag in the frame (a
/// bridge, like a NIC with VLAN offload, moves the outer tag out of the
/// frame into metadata, and the kernel strips it from there).
#[test]
fn a_denied_source_behind_priority_tags_gets_no_answer() {
    let gw = NetNs::new("gw");
    let peer = NetNs::new("pe");
    let veth = Veth::new(&gw, &peer);
    // The peer has an allowed address and a denied one on the same link.
    let (allowed, denied): (Ipv4Addr, Ipv4Addr) =
        (veth.b_ip.parse().unwrap(), "10.200.0.3".parse().unwrap());
    peer.exec(&["ip", "addr", "add", "10.200.0.3/24", "dev", &veth.b]);
    let _pins = PinGuard::new(&veth.a);
    let tmp = TempDir::new("wire-tags");
    let mut daemon = start(
        &gw,
        &tmp,
        &format!(
            r#"[gateway]
listen = "0.0.0.0:8080"
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
deny = ["{denied}/32"]
"#,
            veth.a
        ),
    );
    let gw_at = (veth.a_ip.parse().unwrap(), mac(&gw, &veth.a));
    let priority = |n: usize| vec![(0x8100u16, 0u16); n];
    let send = |src, tags: &[(u16, u16)], ports: &[u16]| {
        syns_answered(&peer, &veth.b, src, gw_at, tags, ports)
    };

    // The kernel strips three priority tags and accepts the connection.
    let ports = [41001, 41002, 41003];
    assert_eq!(
        send(allowed, &priority(3), &ports),
        ports,
        "the stack answers frames behind three VID 0 tags"
    );
    let before = drops(&veth.a, "denied");
    let answered = send(denied, &priority(3), &[42001, 42002, 42003]);
    assert!(
        answered.is_empty(),
        "the denied source was answered on {answered:?}"
    );
    assert_eq!(
        drops(&veth.a, "denied") - before,
        3,
        "each tagged frame counted as denied"
    );
    // As deep as the program walks, in a mix of tag types.
    let mixed: Vec<(u16, u16)> = (0..8)
        .map(|i| (if i % 2 == 0 { 0x88a8 } else { 0x8100 }, 0))
        .collect();
    assert!(send(denied, &mixed, &[42004]).is_empty());
    assert_eq!(drops(&veth.a, "denied") - before, 4);

    // Deeper than the program walks: dropped whatever the source, counted.
    let before = drops(&veth.a, "unparsed");
    assert!(
        send(allowed, &priority(9), &[43001]).is_empty(),
        "a nine-tag frame got an answer"
    );
    assert_eq!(drops(&veth.a, "unparsed") - before, 1);
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log_text());
}

/// An HTTP/1.1 server in `ns` answering every request with its request
/// line; stops when `stop` is set.
fn http_server(ns: &NetNs, port: u16, stop: Arc<AtomicBool>) {
    let listener = ns.run_in(move || TcpListener::bind(("0.0.0.0", port)).unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            conn.set_nonblocking(false).unwrap();
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&head);
            let body = format!("backend saw {}", text.lines().next().unwrap_or(""));
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

/// A UDP server in `ns` answering every datagram with "answer".
fn udp_server(ns: &NetNs, port: u16, stop: Arc<AtomicBool>) {
    let sock = ns.run_in(move || UdpSocket::bind(("0.0.0.0", port)).unwrap());
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((_, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(b"answer", from);
            }
        }
    });
}

/// A query from an ephemeral port of the node to `server`: (the local
/// port, whether an answer came within 2 s).
fn query(gw: &NetNs, server: (Ipv4Addr, u16)) -> (u16, bool) {
    gw.run_in(move || {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        sock.send_to(b"query", server).unwrap();
        let mut buf = [0u8; 64];
        let answered = sock
            .recv_from(&mut buf)
            .is_ok_and(|(n, _)| &buf[..n] == b"answer");
        (sock.local_addr().unwrap().port(), answered)
    })
}

fn curl(ns: &NetNs, url: &str) -> Output {
    ns.command(&["curl", "-sS", "--max-time", "3", url])
        .output()
        .unwrap()
}

#[test]
fn the_node_reaches_servers_through_an_interface_that_drops_unprotected_ports() {
    const EXT: u8 = 2;
    let lan = Lan::new();
    let gw = NetNs::new("gw");
    let ext = NetNs::new("ex");
    let gw_if = lan.join(&gw, GW);
    lan.join(&ext, EXT);
    let _pins = PinGuard::new(&gw_if);
    // A range of the node's own, so that the daemon is seen to read it.
    gw.exec(&["sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40999"]);
    let stop = Arc::new(AtomicBool::new(false));
    http_server(&ext, 9000, stop.clone());
    udp_server(&ext, 53, stop.clone());
    udp_server(&ext, 5300, stop.clone());

    let tmp = TempDir::new("wire-replies");
    let mut daemon = start(
        &gw,
        &tmp,
        &format!(
            r#"[gateway]
listen = "0.0.0.0:8080"
drain_timeout_secs = 2
[xdp]
iface = "{gw_if}"
mode = "native"
[[apis]]
name = "orders"
path = "/"
backend = "http://{}:9000"
[dos]
unprotected_ports = "drop"
[[dos.port_groups]]
name = "api"
tcp = [8080]
"#,
            Lan::ip(EXT)
        ),
    );
    let filtered = || drops(&gw_if, "port_filtered");

    // The proxy's connection to the backend gets its replies.
    let out = curl(&ext, &format!("http://{}:8080/orders/7", Lan::ip(GW)));
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("backend saw GET /orders/7"),
        "through the proxy: {body}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        daemon.log_text()
    );
    // So does any process on the node, and a resolver's answer.
    let out = curl(&gw, &format!("http://{}:9000/direct", Lan::ip(EXT)));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("backend saw GET /direct"),
        "from the node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (port, answered) = query(&gw, (ip(EXT), 53));
    assert!((40000..=40999).contains(&port), "local port {port}");
    assert!(answered, "no answer from the resolver on port 53");

    // A changed range is read again on reload.
    gw.exec(&["sysctl", "-qw", "net.ipv4.ip_local_port_range=41000 41999"]);
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !daemon.log_text().contains("DoS policy reloaded") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (port, answered) = query(&gw, (ip(EXT), 53));
    assert!((41000..=41999).contains(&port), "local port {port}");
    assert!(answered, "no answer to a port of the new range");

    // Not replies: an answer from another UDP port, and a connection
    // opened to an ephemeral port, stay dropped.
    let before = filtered();
    let (_, answered) = query(&gw, (ip(EXT), 5300));
    assert!(!answered, "UDP from port 5300 to an ephemeral port passed");
    let out = ext
        .command(&[
            "curl",
            "-sS",
            "--max-time",
            "1",
            &format!("http://{}:41500/", Lan::ip(GW)),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(28),
        "a SYN to an ephemeral port must time out (dropped), not be refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(filtered() >= before + 2, "both counted as port_filtered");

    stop.store(true, Ordering::Relaxed);
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log_text());
}
