//! `edgegw-cp serve` under a service manager: READY=1 once it listens,
//! WATCHDOG=1 while its store answers, SIGHUP harmless, STOPPING=1 and exit
//! 0 on SIGTERM (a notification socket made by the test; no systemd).

use std::{
    os::unix::net::UnixDatagram,
    process::Command,
    time::{Duration, Instant},
};

use edgegw_tests::{
    cp::{Db, Store, cp_bin, edgegw_cp},
    gateway::curl,
    process::{Daemon, TempDir},
};

/// Datagrams until one has the line `want` (20 s at most); panics with the
/// daemon's log otherwise.
fn wait_for(socket: &UnixDatagram, want: &str, daemon: &Daemon) -> String {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == want) {
                return msg;
            }
        }
    }
    panic!("no {want} within 20 s; log:\n{}", daemon.log_text());
}

edgegw_tests::on_both_stores!(ready_watchdog_reload_and_stop_follow_the_service_protocol);

fn ready_watchdog_reload_and_stop_follow_the_service_protocol(store: Store) {
    let tmp = TempDir::new("cpops");
    let db = Db::new(store, &tmp.0);
    let socket_path = tmp.0.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let mut cmd = Command::new(cp_bin());
    cmd.arg("serve")
        .args(db.args())
        .args(["--listen", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000");
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("cp.log"));
    let ready = wait_for(&socket, "READY=1", &daemon);
    assert!(
        ready.contains(&format!("MAINPID={}", daemon.child.id())),
        "{ready}"
    );
    // Ready means it answers.
    let log = daemon.log_text();
    assert!(log.contains("no admin token yet"), "{log}");
    let addr = log
        .split_whitespace()
        .find_map(|w| w.strip_prefix("listen="))
        .unwrap()
        .to_string();
    let (status, _) = curl(&[&format!("http://{addr}/healthz")]);
    assert_eq!(status, 200);
    wait_for(&socket, "WATCHDOG=1", &daemon);

    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(&socket, "WATCHDOG=1", &daemon);
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "SIGHUP ended it"
    );
    // The admin token made meanwhile by the CLI works at once.
    let mut create = vec!["admin-token".to_string(), "create".into()];
    create.extend(db.args());
    let out = edgegw_cp(&create);
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap();
    let (status, body) = curl(&[
        "-H",
        &format!("Authorization: Bearer {}", token.trim()),
        &format!("http://{addr}/v1/gateways"),
    ]);
    assert_eq!((status, body.trim()), (200, "[]"));

    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    wait_for(&socket, "STOPPING=1", &daemon);
    assert_eq!(daemon.stop(), Some(0));
}
