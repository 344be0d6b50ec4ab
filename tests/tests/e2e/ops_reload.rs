//! `edgegw reload` (the unit's ExecReload): SIGHUP, then the outcome the
//! daemon recorded: exit 0 once a changed file is applied (the next request
//! sees it), exit 1 with the daemon's reason in one line when the file is
//! refused (the running configuration keeps serving), and one line when no
//! daemon runs. Under a service manager each SIGHUP is framed by
//! RELOADING=1 with MONOTONIC_USEC and READY=1 (what Type=notify-reload
//! expects), for a refused file too.

use std::{
    os::unix::net::UnixDatagram,
    process::Command,
    time::{Duration, Instant},
};

use edgegw_tests::{
    gateway::{TestGateway, curl},
    process::{Daemon, TempDir, assert_one_line_error, edgegw, edgegw_bin, free_port, wait_port},
};

fn api(path: &str) -> String {
    format!(
        "[[apis]]\nname = \"demo\"\npath = \"{path}\"\nbackend = \"http://127.0.0.1:{{BACKEND}}\"\n"
    )
}

#[test]
fn reload_waits_for_the_outcome_and_fails_with_the_reason() {
    let tmp = TempDir::new("reload");
    let (port, admin, backend) = (free_port(), free_port(), free_port());
    let run = tmp.0.join("run");
    let config_text = |path: &str, extra: &str| {
        format!(
            "{}{}[demo_backend]\nlisten = \"127.0.0.1:{backend}\"\n{extra}",
            TestGateway::base_config(&tmp, port, admin),
            api(path).replace("{BACKEND}", &backend.to_string())
        )
    };
    let config = tmp.write("edgegw.toml", &config_text("/one", ""));
    let mut cmd = Command::new(edgegw_bin());
    cmd.args(["run", "--config", config.to_str().unwrap(), "--runtime-dir"])
        .arg(&run);
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    daemon.wait_ready();
    wait_port(&format!("127.0.0.1:{port}"));
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    assert_eq!(curl(&[&url("/one/x")]).0, 200);

    let reload = || edgegw(&["reload", "--runtime-dir", run.to_str().unwrap()]);
    // Applied: the command returns after the swap, the next request sees it.
    tmp.write("edgegw.toml", &config_text("/two", ""));
    let out = reload();
    assert!(out.status.success(), "{out:?}\n{}", daemon.log_text());
    assert!(String::from_utf8_lossy(&out.stdout).contains("reloaded from file"));
    assert_eq!(curl(&[&url("/two/x")]).0, 200);
    assert_eq!(curl(&[&url("/one/x")]).0, 404);

    // Refused: one line with the daemon's reason; still serving /two.
    tmp.write(
        "edgegw.toml",
        &config_text("/three", "[limits]\nmax_headerz = 1\n"),
    );
    let out = reload();
    assert_one_line_error(
        &out,
        &[
            "reload refused",
            "keeps its running configuration",
            "max_headerz",
        ],
    );
    assert_eq!(curl(&[&url("/two/x")]).0, 200);

    // Two reloads within one second are told apart.
    tmp.write("edgegw.toml", &config_text("/four", ""));
    assert!(reload().status.success());
    tmp.write("edgegw.toml", &config_text("/five", ""));
    assert!(reload().status.success());
    assert_eq!(curl(&[&url("/five/x")]).0, 200);
    assert_eq!(daemon.stop(), Some(0));

    let out = reload();
    assert_one_line_error(&out, &["edgegw"]);
}

/// CLOCK_MONOTONIC in microseconds, the clock of MONOTONIC_USEC.
fn monotonic_usec() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    ts.tv_sec() as u64 * 1_000_000 + ts.tv_nsec() as u64 / 1_000
}

/// The next datagram on `socket` that has a line starting with `want`.
fn wait_datagram(socket: &UnixDatagram, want: &str, daemon: &Daemon) -> String {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l.starts_with(want)) {
                return msg;
            }
        }
    }
    panic!("no {want} within 20 s:\n{}", daemon.log_text());
}

#[test]
fn sighup_is_framed_by_reloading_and_ready_notifications() {
    let tmp = TempDir::new("reloadn");
    let (port, admin, backend) = (free_port(), free_port(), free_port());
    let config_text = |path: &str, extra: &str| {
        format!(
            "{}{}[demo_backend]\nlisten = \"127.0.0.1:{backend}\"\n{extra}",
            TestGateway::base_config(&tmp, port, admin),
            api(path).replace("{BACKEND}", &backend.to_string())
        )
    };
    let config = tmp.write("edgegw.toml", &config_text("/one", ""));
    let socket_path = tmp.0.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    let mut cmd = Command::new(edgegw_bin());
    cmd.args(["run", "--config", config.to_str().unwrap(), "--runtime-dir"])
        .arg(tmp.0.join("run"))
        .env("NOTIFY_SOCKET", &socket_path);
    let daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    wait_datagram(&socket, "READY=1", &daemon);

    for (path, extra, outcome) in [
        ("/two", "", "STATUS=serving; reloaded"),
        (
            "/three",
            "[limits]\nmax_headerz = 1\n",
            "STATUS=serving; reload refused",
        ),
    ] {
        tmp.write("edgegw.toml", &config_text(path, extra));
        let before = monotonic_usec();
        daemon.signal(nix::sys::signal::Signal::SIGHUP);
        let reloading = wait_datagram(&socket, "RELOADING=1", &daemon);
        let stamp: u64 = reloading
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"))
            .parse()
            .unwrap();
        assert!(
            (before..=monotonic_usec()).contains(&stamp),
            "{stamp} outside the SIGHUP's time"
        );
        let ready = wait_datagram(&socket, "READY=1", &daemon);
        assert!(ready.lines().any(|l| l.starts_with(outcome)), "{ready:?}");
    }
    wait_port(&format!("127.0.0.1:{port}"));
    assert_eq!(curl(&[&format!("http://127.0.0.1:{port}/two/x")]).0, 200);
}
