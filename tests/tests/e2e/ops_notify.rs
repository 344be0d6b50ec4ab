//! sd_notify against a notification socket created by the test (no systemd
//! needed): READY=1 only once the port answers and XDP is attached,
//! WATCHDOG=1 at half of WATCHDOG_USEC for as long as the proxy answers,
//! STOPPING=1 on SIGTERM.

use std::{
    os::{
        linux::net::SocketAddrExt,
        unix::net::{SocketAddr, UnixDatagram},
    },
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use edgegw_tests::{
    netns::{NetNs, Veth, unique_name},
    process::{Daemon, TempDir, edgegw_bin, free_port},
};

fn config(listen: &str, iface: &str) -> String {
    format!(
        "[gateway]\nlisten = \"{listen}\"\ndrain_timeout_secs = 2\n[xdp]\niface = \"{iface}\"\nmode = \"native\"\ndetach_on_exit = true\n[[apis]]\nname = \"a\"\npath = \"/\"\nbackend = \"http://127.0.0.1:9\"\n"
    )
}

/// The next datagram, or None after `timeout`.
fn next(socket: &UnixDatagram, timeout: Duration) -> Option<String> {
    socket.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 4096];
    match socket.recv(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("recv: {e}"),
    }
}

/// Waits for a datagram containing `want`, returning the ones before it.
fn wait_for(socket: &UnixDatagram, want: &str, daemon: &Daemon) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some(msg) = next(socket, Duration::from_millis(200)) {
            if msg.lines().any(|l| l == want) {
                return seen;
            }
            seen.push(msg);
        }
    }
    panic!(
        "no {want} within 20 s (got {seen:?}); daemon log:\n{}",
        daemon.log_text()
    );
}

#[test]
fn ready_after_listen_and_attach_then_watchdog_then_stopping() {
    let gw = NetNs::new("nt");
    let client = NetNs::new("nt");
    let veth = Veth::new(&gw, &client);
    let tmp = TempDir::new("notify");
    let cfg = tmp.write("c.toml", &config("0.0.0.0:8080", &veth.a));
    let socket_path = tmp.0.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();

    let mut cmd = gw.command(&[
        edgegw_bin().to_str().unwrap(),
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--runtime-dir",
        tmp.0.join("run").to_str().unwrap(),
    ]);
    cmd.env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID");
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));

    let before = wait_for(&socket, "READY=1", &daemon);
    assert!(before.is_empty(), "messages before READY=1: {before:?}");
    // At READY=1 the port answers and the program is attached and pinned.
    let answer = client.exec(&[
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
        &format!("http://{}:8080/x", veth.a_ip),
    ]);
    assert_eq!(answer, "502", "the proxy answers (backend is down)");
    assert!(
        Path::new("/sys/fs/bpf/edgegw")
            .join(&veth.a)
            .join("link")
            .exists(),
        "XDP link not pinned at READY=1"
    );
    assert!(
        gw.exec(&["ip", "link", "show", "dev", &veth.a])
            .contains("xdp")
    );

    // WATCHDOG=1 keeps coming, at half of WATCHDOG_USEC (200 ms) or slower:
    // never faster (a slow machine only spreads them out).
    wait_for(&socket, "WATCHDOG=1", &daemon);
    let first = Instant::now();
    for _ in 0..4 {
        wait_for(&socket, "WATCHDOG=1", &daemon);
    }
    let spacing = first.elapsed() / 4;
    assert!(
        spacing >= Duration::from_millis(150),
        "WATCHDOG=1 every {spacing:?}; WATCHDOG_USEC=400000 asks for 200 ms"
    );

    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    wait_for(&socket, "STOPPING=1", &daemon);
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log_text());
    assert!(!Path::new("/sys/fs/bpf/edgegw").join(&veth.a).exists());
}

#[test]
fn abstract_socket_and_watchdog_for_another_pid() {
    let tmp = TempDir::new("notifyabs");
    let port = free_port();
    let cfg = tmp.write("c.toml", &config(&format!("127.0.0.1:{port}"), "lo"));
    let name = unique_name("sdn");
    let socket =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();

    let mut cmd = Command::new(edgegw_bin());
    cmd.args([
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--xdp-mode",
        "off",
        "--runtime-dir",
        tmp.0.join("run").to_str().unwrap(),
    ])
    .env("NOTIFY_SOCKET", format!("@{name}"))
    .env("WATCHDOG_USEC", "200000")
    // The watchdog belongs to another process: the daemon must not ping.
    .env("WATCHDOG_PID", "1");
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    wait_for(&socket, "READY=1", &daemon);
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("listening at READY=1");
    assert_eq!(next(&socket, Duration::from_millis(800)), None);
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    wait_for(&socket, "STOPPING=1", &daemon);
    assert_eq!(daemon.stop(), Some(0));
}

/// When the gateway cannot serve (every file descriptor taken by idle client
/// connections: accept fails, and so does the probe's own connection),
/// WATCHDOG=1 stops and systemd would restart it. Once the clients leave,
/// the pings resume. (A listener that accepts but never answers is covered
/// by the probe's unit tests in `gateway-user/src/watchdog.rs`.)
#[test]
fn watchdog_stops_while_the_gateway_cannot_serve() {
    let tmp = TempDir::new("wdhang");
    let port = free_port();
    let cfg = tmp.write("c.toml", &config(&format!("127.0.0.1:{port}"), "lo"));
    let socket_path = tmp.0.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let mut cmd = Command::new("prlimit");
    cmd.args(["--nofile=64:64", "--"])
        .arg(edgegw_bin())
        .args([
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--xdp-mode",
            "off",
            "--runtime-dir",
            tmp.0.join("run").to_str().unwrap(),
        ])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID");
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    wait_for(&socket, "READY=1", &daemon);
    wait_for(&socket, "WATCHDOG=1", &daemon);

    // 100 idle connections: more than the daemon's 64 descriptors.
    let held: Vec<std::net::TcpStream> = (0..100)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(held.len() >= 64, "only {} connections", held.len());
    // Let pings already on their way arrive, then listen for silence.
    std::thread::sleep(Duration::from_millis(600));
    while next(&socket, Duration::from_millis(10)).is_some() {}
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        if next(&socket, Duration::from_millis(300)).is_some_and(|m| m == "WATCHDOG=1") {
            pings += 1;
        }
    }
    assert_eq!(pings, 0, "WATCHDOG=1 while the gateway could not serve");
    assert!(daemon.log_text().contains("watchdog probe failed"));

    drop(held);
    wait_for(&socket, "WATCHDOG=1", &daemon);
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log_text());
}
