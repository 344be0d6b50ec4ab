//! The capability set of `systemd/edgegw.service` is enough: the daemon runs
//! as an unprivileged user (nobody, standing in for `edgegw`) with exactly the
//! unit's `AmbientCapabilities`, attaches native XDP to a veth, binds port 80
//! and serves; `edgegw status` sees the program. Its pin directory is created
//! for that user beforehand, as the unit's `ExecStartPre` does.

use std::{
    os::unix::fs::{PermissionsExt, chown},
    path::{Path, PathBuf},
};

use edgegw_tests::{
    netns::{NetNs, Veth, unique_name},
    process::{Daemon, TempDir, edgegw_bin},
};

const NOBODY: u32 = 65534;

/// A pin root under /sys/fs/bpf owned by nobody, removed on drop.
struct PinRoot(PathBuf);

impl Drop for PinRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `CAP_A CAP_B` from the unit's AmbientCapabilities= line, as setpriv wants
/// them: `+a,+b`.
fn unit_capabilities() -> String {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/edgegw.service"),
    )
    .unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("AmbientCapabilities="))
        .expect("AmbientCapabilities= in edgegw.service");
    let caps: Vec<String> = line
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    assert!(!caps.is_empty());
    assert!(
        !caps.iter().any(|c| c == "+sys_admin"),
        "the unit should not need CAP_SYS_ADMIN"
    );
    caps.join(",")
}

#[test]
fn daemon_runs_as_an_unprivileged_user_with_the_units_capabilities() {
    let caps = unit_capabilities();
    let gw = NetNs::new("pv");
    let client = NetNs::new("pv");
    let veth = Veth::new(&gw, &client);
    let tmp = TempDir::new("caps");
    std::fs::set_permissions(&tmp.0, PermissionsExt::from_mode(0o755)).unwrap();
    let cfg = tmp.write(
        "c.toml",
        &format!(
            "[gateway]\nlisten = \"0.0.0.0:80\"\ndrain_timeout_secs = 2\n[xdp]\niface = \"{}\"\nmode = \"native\"\ndetach_on_exit = true\n",
            veth.a
        ),
    );
    std::fs::set_permissions(&cfg, PermissionsExt::from_mode(0o644)).unwrap();
    let run = tmp.0.join("run");
    std::fs::create_dir(&run).unwrap();
    chown(&run, Some(NOBODY), Some(NOBODY)).unwrap();
    let pins = PinRoot(Path::new("/sys/fs/bpf").join(unique_name("egwpv")));
    std::fs::create_dir(&pins.0).unwrap();
    chown(&pins.0, Some(NOBODY), Some(NOBODY)).unwrap();

    let mut cmd = gw.command(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        &format!("--inh-caps=-all,{caps}"),
        &format!("--ambient-caps=-all,{caps}"),
        &format!("--bounding-set=-all,{caps}"),
        edgegw_bin().to_str().unwrap(),
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--runtime-dir",
        run.to_str().unwrap(),
    ]);
    cmd.env("EDGEGW_BPFFS_ROOT", &pins.0);
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    daemon.wait_ready();

    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id())).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(uid.contains("65534"), "not running as nobody: {uid}");

    let code = client.exec(&[
        "curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
        &format!("http://{}:80/x", veth.a_ip),
    ]);
    assert_eq!(code, "404", "{}", daemon.log_text());
    let out = std::process::Command::new(edgegw_bin())
        .args(["status", "--json", "--runtime-dir", run.to_str().unwrap()])
        .env("EDGEGW_BPFFS_ROOT", &pins.0)
        .output()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(s["xdp"]["program_id"].as_u64().unwrap() > 0, "{s}");
    assert!(
        s["xdp"]["totals"]["passed"]["packets"].as_u64().unwrap() > 0,
        "{s}"
    );

    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log_text());
    assert!(!pins.0.join(&veth.a).exists(), "pins left behind");
    assert!(
        !gw.exec(&["ip", "link", "show", "dev", &veth.a])
            .contains("xdp")
    );
}
