//! The operator CLI (`ban`, `unban`, `bans`, `top`, `drops --watch`) on
//! pinned maps, with packets sent through BPF_PROG_TEST_RUN between the
//! commands; and bad input to the CLI and the `[dos]` config section.

use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use edgegw_tests::{
    netns::{NetNs, Veth},
    packets::*,
    pins::PinGuard,
    process::{TempDir, assert_one_line_error, edgegw, edgegw_bin, free_port},
    xdp::{TestProgram, XDP_DROP, XDP_PASS},
};

/// `edgegw ARGS` on the pins of `prog` (the CLI finds them by interface
/// name under EDGEGW_BPFFS_ROOT).
fn cli(prog: &TestProgram, args: &[&str]) -> Output {
    Command::new(edgegw_bin())
        .env("EDGEGW_BPFFS_ROOT", prog.pins.path.parent().unwrap())
        .args(args)
        .args(["--iface", &prog.pins.iface])
        .output()
        .unwrap()
}

fn ok_json(out: Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn frame(src: [u8; 4], flags: u8) -> Vec<u8> {
    ether(ETH_IPV4, &[], &ipv4(src, PROTO_TCP, &tcp(8080, flags)))
}

#[test]
fn ban_bans_unban_and_top_work_on_the_pinned_maps() {
    let prog = TestProgram::load();
    let cfg = "[gateway]\nlisten = \"127.0.0.1:1\"\n[dos]\nsyn_per_sec = 1\nsyn_burst = 2\n";
    let policy = edgegw::config::Config::parse("t.toml", cfg).unwrap().dos;
    edgegw::datapath::apply_policy(&prog.pins, policy.as_ref()).unwrap();

    let out = cli(&prog, &["ban", "198.51.100.0/24", "--for", "10m"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(prog.run(&frame([198, 51, 100, 9], ACK)), XDP_DROP);
    let bans = ok_json(cli(&prog, &["bans", "--json"]));
    assert_eq!(bans["bans"][0]["cidr"], "198.51.100.0/24", "{bans}");
    let left = bans["bans"][0]["expires_in_secs"].as_u64().unwrap();
    assert!((590..=600).contains(&left), "{bans}");
    let table = String::from_utf8(cli(&prog, &["bans"]).stdout).unwrap();
    assert!(table.contains("198.51.100.0/24"), "{table}");

    let out = cli(&prog, &["unban", "198.51.100.0/24"]);
    assert!(out.status.success());
    assert_eq!(prog.run(&frame([198, 51, 100, 9], ACK)), XDP_PASS);
    assert_one_line_error(
        &cli(&prog, &["unban", "198.51.100.0/24"]),
        &["is not banned", "edgegw bans"],
    );

    for _ in 0..5 {
        prog.run(&frame([192, 0, 2, 1], SYN));
    }
    prog.run(&frame([192, 0, 2, 2], SYN));
    let top = ok_json(cli(&prog, &["top", "--json", "--limit", "1"]));
    let sources = top["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1, "{top}");
    assert_eq!(sources[0]["source"], "192.0.2.1");
    assert_eq!(
        (
            sources[0]["packets"].as_u64(),
            sources[0]["dropped"].as_u64()
        ),
        (Some(5), Some(3))
    );
    let table = String::from_utf8(cli(&prog, &["top"]).stdout).unwrap();
    assert!(
        table.contains("192.0.2.2") && table.contains("DROPPED"),
        "{table}"
    );
}

#[test]
fn drops_watch_prints_rates() {
    let prog = TestProgram::load();
    let watch = Command::new("timeout")
        .args([
            "4.5",
            edgegw_bin().to_str().unwrap(),
            "drops",
            "--json",
            "--watch",
            "1",
        ])
        .args(["--iface", &prog.pins.iface])
        .env("EDGEGW_BPFFS_ROOT", prog.pins.path.parent().unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        prog.run_repeated(&frame([192, 0, 2, 1], ACK), 1000);
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = watch.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let samples: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(samples.len() >= 2, "{text}");
    for s in &samples {
        assert!(
            s["reasons"]["passed"]["packets_per_sec"].as_f64().unwrap() > 0.0,
            "{s}"
        );
        assert_eq!(s["reasons"]["banned"]["packets_per_sec"], 0.0, "{s}");
    }
    let table = Command::new("timeout")
        .args([
            "1.5",
            edgegw_bin().to_str().unwrap(),
            "drops",
            "--watch",
            "1",
        ])
        .args(["--iface", &prog.pins.iface])
        .env("EDGEGW_BPFFS_ROOT", prog.pins.path.parent().unwrap())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&table.stdout).contains("PKT/S"));
}

#[test]
fn bad_cli_input_is_one_clear_line() {
    for (args, wanted) in [
        (
            vec!["ban", "banana", "--for", "10m"],
            vec!["CIDR", "\"banana\""],
        ),
        (
            vec!["ban", "10.0.0.1/8", "--for", "10m"],
            vec!["did you mean \"10.0.0.0/8\""],
        ),
        (
            vec!["ban", "10.0.0.0/33", "--for", "10m"],
            vec!["prefix length"],
        ),
        (
            vec!["ban", "10.0.0.0/8", "--for", "10x"],
            vec!["--for", "\"10x\"", "10m"],
        ),
        (
            vec!["ban", "10.0.0.0/8", "--for", "0s"],
            vec!["--for", "at least 1s"],
        ),
        (
            vec!["ban", "10.0.0.0/8", "--for", "99999999999999999999d"],
            vec!["--for", "at most"],
        ),
        (vec!["unban", "::1/200"], vec!["CIDR", "0 to 128"]),
        (
            vec!["drops", "--watch", "0"],
            vec!["--watch", "at least 1 second"],
        ),
        (
            vec!["ban", "10.0.0.0/8", "--for", "1h", "--iface", "nosuch2"],
            vec!["nothing pinned for interface \"nosuch2\""],
        ),
        (vec!["top", "--iface", "nosuch2"], vec!["nothing pinned"]),
    ] {
        assert_one_line_error(&edgegw(&args), &wanted);
    }
}

#[test]
fn bad_dos_config_is_rejected_whole_before_anything_is_attached() {
    let tmp = TempDir::new("dosbad");
    for (dos, wanted) in [
        (
            "packets_per_sec = 0",
            "dos.packets_per_sec: 0 is out of range",
        ),
        (
            "syn_burst = 1000000001",
            "dos.syn_burst: 1000000001 is out of range",
        ),
        (
            "deny = [\"10.0.0.1/8\"]",
            "dos.deny: \"10.0.0.1/8\" has host bits set",
        ),
        ("allow = [\"300.0.0.0/8\"]", "dos.allow"),
        ("fragments = \"sometimes\"", "dos.fragments"),
        ("ipv6_prefix = 129", "dos.ipv6_prefix"),
        ("max_sources = 0", "dos.max_sources"),
        ("pps = 5", "pps"),
        ("[[dos.port_groups]]\nname = \"a\"\ntcp = [70000]", "70000"),
    ] {
        let text = format!(
            "[gateway]\nlisten = \"127.0.0.1:{}\"\n[xdp]\niface = \"lo\"\nmode = \"skb\"\n[dos]\n{dos}\n",
            free_port()
        );
        let cfg = tmp.write("c.toml", &text);
        let out = edgegw(&["run", "--config", cfg.to_str().unwrap()]);
        assert_one_line_error(&out, &[wanted, "c.toml"]);
    }
}

#[test]
fn pinned_maps_of_an_incompatible_version_are_refused_not_adopted() {
    let ns = NetNs::new("ic");
    let peer = NetNs::new("ic");
    let veth = Veth::new(&ns, &peer);
    let pins = PinGuard::new(&veth.a);
    // A GROUPS map with the wrong value size, as an older edgegw might
    // have left it: here, a CONFIG map pinned under that name.
    let other = TestProgram::load();
    std::fs::create_dir_all(pins.dir()).unwrap();
    aya::maps::MapData::from_pin(other.pins.map("CONFIG"))
        .unwrap()
        .pin(pins.dir().join("GROUPS"))
        .unwrap();

    let tmp = TempDir::new("compat");
    let cfg = tmp.write(
        "c.toml",
        &format!(
            "[gateway]\nlisten = \"127.0.0.1:{}\"\n[xdp]\niface = \"{}\"\nmode = \"skb\"\n",
            free_port(),
            veth.a
        ),
    );
    let out = ns
        .command(&[
            edgegw_bin().to_str().unwrap(),
            "run",
            "--config",
            cfg.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_one_line_error(
        &out,
        &[
            "pinned map GROUPS",
            "incompatible edgegw version",
            &format!("edgegw detach --iface {}", veth.a),
        ],
    );
    assert!(
        !ns.exec(&["ip", "link", "show", "dev", &veth.a])
            .contains("prog/xdp")
    );
    let out = edgegw(&["detach", "--iface", &veth.a]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!pins.dir().exists());
}
