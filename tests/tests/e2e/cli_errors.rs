//! Bad input to the real binary: one clear line naming the problem and the
//! fix, a non-zero exit, and nothing left attached or pinned.

use std::path::Path;

use aya::programs::{Xdp, XdpMode};
use edgegw_tests::{
    netns::{NetNs, Veth},
    process::{TempDir, assert_one_line_error, edgegw, edgegw_bin, free_port},
    xdp::TestProgram,
};

fn config(listen: &str, iface: &str) -> String {
    format!(
        "[gateway]\nlisten = \"{listen}\"\n[xdp]\niface = \"{iface}\"\nmode = \"skb\"\n[[apis]]\nname = \"a\"\npath = \"/\"\nbackend = \"http://127.0.0.1:9\"\n"
    )
}

fn assert_nothing_pinned(iface: &str) {
    assert!(
        !Path::new("/sys/fs/bpf/edgegw").join(iface).exists(),
        "pins left for {iface}"
    );
}

#[test]
fn nonexistent_interface() {
    let tmp = TempDir::new("noif");
    let cfg = tmp.write(
        "c.toml",
        &config(&format!("127.0.0.1:{}", free_port()), "nosuch0"),
    );
    let out = edgegw(&["run", "--config", cfg.to_str().unwrap()]);
    assert_one_line_error(&out, &["interface \"nosuch0\" not found", "ip link"]);
    assert_nothing_pinned("nosuch0");
}

#[test]
fn unreadable_and_invalid_config_files() {
    let out = edgegw(&["run", "--config", "/nonexistent/edgegw.toml"]);
    assert_one_line_error(&out, &["cannot read config file /nonexistent/edgegw.toml"]);

    let tmp = TempDir::new("badcfg");
    let cfg = tmp.write(
        "c.toml",
        &config("127.0.0.1:1", "lo").replace("mode = \"skb\"", "mode = \"fast\""),
    );
    let out = edgegw(&["run", "--config", cfg.to_str().unwrap()]);
    assert_one_line_error(&out, &["c.toml", "xdp.mode", "native, skb or off"]);

    let cfg = tmp.write("d.toml", "[gateway]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n");
    let out = edgegw(&["run", "--config", cfg.to_str().unwrap()]);
    assert_one_line_error(&out, &["d.toml", "lisen"]);
}

#[test]
fn missing_privilege() {
    let ns = NetNs::new("np");
    let peer = NetNs::new("np");
    let veth = Veth::new(&ns, &peer);
    let tmp = TempDir::new("nopriv");
    let cfg = tmp.write("c.toml", &config("127.0.0.1:18080", &veth.a));
    std::fs::set_permissions(&tmp.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = ns
        .command(&[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            edgegw_bin().to_str().unwrap(),
            "run",
            "--config",
            cfg.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_one_line_error(&out, &["permission denied", "run as root"]);
    assert_nothing_pinned(&veth.a);
}

#[test]
fn foreign_xdp_program_is_left_alone() {
    let ns = NetNs::new("fx");
    let peer = NetNs::new("fx");
    let veth = Veth::new(&ns, &peer);
    // Attach a program from this test process, not through edgegw.
    let iface = veth.a.clone();
    let _foreign = ns.run_in(move || {
        let mut foreign = TestProgram::load();
        let prog: &mut Xdp = foreign
            .ebpf
            .program_mut("edgegw")
            .unwrap()
            .try_into()
            .unwrap();
        prog.attach(&iface, XdpMode::Skb)
            .expect("attach the foreign program");
        foreign
    });

    let tmp = TempDir::new("foreign");
    let cfg = tmp.write("c.toml", &config("127.0.0.1:18081", &veth.a));
    let out = ns
        .command(&[
            edgegw_bin().to_str().unwrap(),
            "run",
            "--config",
            cfg.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_one_line_error(&out, &["already has an XDP program", "xdp off"]);
    assert_nothing_pinned(&veth.a);
    // The foreign program is still there.
    assert!(
        ns.exec(&["ip", "link", "show", "dev", &veth.a])
            .contains("prog/xdp")
    );
}

#[test]
fn occupied_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let tmp = TempDir::new("port");
    let cfg = tmp.write("c.toml", &config(&addr, "lo"));
    let out = edgegw(&["run", "--config", cfg.to_str().unwrap()]);
    assert_one_line_error(
        &out,
        &[&format!("cannot listen on {addr}"), "gateway.listen"],
    );
}

#[test]
fn drops_with_nothing_pinned() {
    let out = edgegw(&["drops", "--iface", "nosuch1"]);
    assert_one_line_error(&out, &["nothing pinned for interface \"nosuch1\""]);
    let out = edgegw(&["detach", "--iface", "nosuch1"]);
    assert_one_line_error(&out, &["nothing pinned for interface \"nosuch1\""]);
}
