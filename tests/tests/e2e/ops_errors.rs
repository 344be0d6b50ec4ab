//! Bad operating conditions from the operations issue that `cli_errors.rs`
//! does not cover: a read-only runtime directory, a missing bpffs that
//! cannot be mounted.

use std::{path::Path, process::Command};

use edgegw_tests::{
    netns::{NetNs, Veth},
    process::{TempDir, assert_one_line_error, edgegw_bin, free_port},
};

fn config(listen: &str, iface: &str) -> String {
    format!(
        "[gateway]\nlisten = \"{listen}\"\n[xdp]\niface = \"{iface}\"\nmode = \"native\"\ndetach_on_exit = true\n[[apis]]\nname = \"a\"\npath = \"/\"\nbackend = \"http://127.0.0.1:9\"\n"
    )
}

#[test]
fn read_only_runtime_directory() {
    let tmp = TempDir::new("rofs");
    let port = free_port();
    let cfg = tmp.write("c.toml", &config(&format!("127.0.0.1:{port}"), "lo"));
    let ro = tmp.0.join("ro");
    std::fs::create_dir(&ro).unwrap();
    // A private mount namespace with a read-only tmpfs: EROFS even for root.
    let script = format!(
        "mount -t tmpfs -o ro tmpfs {ro} && exec {bin} run --config {cfg} --xdp-mode off --runtime-dir {ro}/edgegw",
        ro = ro.display(),
        bin = edgegw_bin().display(),
        cfg = cfg.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_one_line_error(
        &out,
        &[
            "cannot write runtime directory",
            "Read-only file system",
            "--runtime-dir",
        ],
    );
    // Nothing half-started: the daemon exited, the port is free again.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn missing_bpffs_that_cannot_be_mounted() {
    let ns = NetNs::new("bf");
    let peer = NetNs::new("bf");
    let veth = Veth::new(&ns, &peer);
    let tmp = TempDir::new("nobpffs");
    let cfg = tmp.write("c.toml", &config("127.0.0.1:18090", &veth.a));
    // /sys/fs/bpf hidden by a plain tmpfs in a private mount namespace, and
    // CAP_SYS_ADMIN dropped so the daemon cannot mount bpffs itself
    // (CAP_BPF and CAP_NET_ADMIN stay: the privilege check passes).
    let script = format!(
        "mount -t tmpfs tmpfs /sys/fs/bpf && exec setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin {bin} run --config {cfg} --runtime-dir {run}",
        bin = edgegw_bin().display(),
        cfg = cfg.display(),
        run = tmp.0.join("run").display()
    );
    let out = ns
        .command(&[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    assert_one_line_error(&out, &["bpffs", "mount -t bpf bpf /sys/fs/bpf"]);
    assert!(!Path::new("/sys/fs/bpf/edgegw").join(&veth.a).exists());
    assert!(
        !ns.exec(&["ip", "link", "show", "dev", &veth.a])
            .contains("xdp")
    );
}
