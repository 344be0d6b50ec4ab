//! `cargo xtask bench proxy --only flood`: legitimate traffic held under
//! an XDP flood. Two network namespaces of this run joined by a veth pair:
//! in the sink, edgegw (listening on the veth) in front of the usual nginx
//! backend (on the sink's loopback); in the source namespace, wrk as a
//! client from an allowed address (192.0.2.1) running the plain HTTP
//! scenario, and, at the same time, the XDP bench's generator (`flood_gen`:
//! random sources in 10.0.0.0/8, 64-byte UDP, as fast as one CPU sends;
//! from an AF_PACKET socket where the kernel refuses XDP live frames, as
//! the output says) flooding the same veth. Four cases in interleaved rounds:
//!
//! - edgegw's XDP program on the sink's veth (native), denying 10.0.0.0/8,
//!   without and with the flood;
//! - edgegw without XDP, the same flood dropped by an nftables
//!   netdev-ingress rule on the same veth, without and with it.
//!
//! Prints requests/s, p50/p99 and edgegw's CPU per request of each, and
//! the ratios flood/no flood and XDP/nftables. The namespaces carry the
//! pid in their names and are deleted (with the veth, the nftables table
//! and edgegw's pins) on every way out; each flood lasts at most the wrk
//! run plus two seconds.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::proxy::{Measure, Proc, backend_http, nginx_with, with_cpu, wrk_in};
use crate::{
    build::{cargo, ebpf_object, edgegw_bin},
    root, setup,
};

/// edgegw's address on the sink's veth end, and the client's on the other.
const SERVER: &str = "192.0.2.2";
const CLIENT: &str = "192.0.2.1";
/// Ports inside the sink namespace (its own, so fixed ports cannot clash).
const EDGEGW_PORT: u16 = 8080;
const BACKEND_PORT: u16 = 8081;
/// The destination MAC of the generator's frames: the sink veth's address.
const SINK_MAC: &str = "02:00:00:00:00:01";

/// A network namespace of this run, deleted on drop (with the veth end in
/// it, which takes its peer along).
struct Netns(String);

impl Netns {
    fn new(name: String) -> anyhow::Result<Netns> {
        ip(&["netns", "add", &name])?;
        let ns = Netns(name);
        ns.run(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }

    /// `nsenter` into this namespace, as a wrapper (it keeps the mount
    /// namespace, so /sys/fs/bpf stays visible to edgegw).
    fn wrapper(&self) -> Vec<String> {
        vec![
            "nsenter".into(),
            format!("--net={}", self.path()),
            "--".into(),
        ]
    }

    fn command(&self, argv: &[&str]) -> Command {
        let wrapper = self.wrapper();
        let mut cmd = Command::new(&wrapper[0]);
        cmd.args(&wrapper[1..]).args(argv);
        cmd
    }

    fn run(&self, argv: &[&str]) -> anyhow::Result<()> {
        quiet(&mut self.command(argv))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    quiet(Command::new("ip").args(args))
}

/// Runs `cmd`, failing with its stderr.
fn quiet(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// What drops the flood in a case.
#[derive(Clone, Copy, PartialEq)]
enum Dropper {
    Xdp,
    Nftables,
}

/// The two namespaces, the veth between them and the backend.
struct Testbed {
    source: Netns,
    sink: Netns,
    /// The source's and the sink's veth ends.
    veth: (String, String),
    flood_gen: std::path::PathBuf,
}

/// Removes edgegw's pins of the sink's veth, nftables' table and the
/// namespaces in that order, whatever happened.
impl Drop for Testbed {
    fn drop(&mut self) {
        if Path::new("/sys/fs/bpf/edgegw").join(&self.veth.1).exists() {
            let bin = edgegw_bin();
            let _ = self
                .sink
                .command(&[&bin.to_string_lossy(), "detach", "--iface", &self.veth.1])
                .output();
        }
        let _ = self
            .sink
            .command(&["nft", "delete", "table", "netdev", "egwflood"])
            .stderr(Stdio::null())
            .status();
    }
}

pub(super) fn run(duration: u64, connections: u64, rounds: u64) -> anyhow::Result<()> {
    setup::ensure_packages(&["nftables", "ethtool"])?;
    setup::run(
        cargo()
            .current_dir(root())
            .args(["build", "--release", "--quiet", "-p", "edgegw-tests"])
            .args(["--bin", "flood_gen"])
            // The object the caller names (a worktree has none of its own).
            .env(
                "EDGEGW_EBPF_OBJECT",
                std::env::var_os("EDGEGW_EBPF_OBJECT").unwrap_or_else(|| ebpf_object().into()),
            ),
    )?;
    let pid = std::process::id();
    let path = Testbed {
        source: Netns::new(format!("egwflood{pid}a"))?,
        sink: Netns::new(format!("egwflood{pid}b"))?,
        veth: (format!("fla{pid}"), format!("flb{pid}")),
        flood_gen: root().join("target/release/flood_gen"),
    };
    let (a, b) = (&path.veth.0, &path.veth.1);
    ip(&[
        "link",
        "add",
        a,
        "netns",
        &path.source.0,
        "type",
        "veth",
        "peer",
        "name",
        b,
        "netns",
        &path.sink.0,
    ])?;
    path.sink
        .run(&["ip", "link", "set", "dev", b, "address", SINK_MAC])?;
    for (ns, dev, addr) in [(&path.source, a, CLIENT), (&path.sink, b, SERVER)] {
        ns.run(&["ip", "addr", "add", &format!("{addr}/24"), "dev", dev])?;
        ns.run(&["ip", "link", "set", dev, "up"])?;
    }
    super::in_scratch_dir("flood", |dir| {
        measure(dir, &path, duration, connections, rounds)
    })
}

/// A case's result and the generator's offered rate (frames/s, 0 without
/// a flood).
struct Case {
    label: &'static str,
    runs: Vec<Measure>,
    offered: Vec<f64>,
}

fn measure(
    dir: &Path,
    path: &Testbed,
    duration: u64,
    connections: u64,
    rounds: u64,
) -> anyhow::Result<()> {
    let _backend = nginx_with(
        dir,
        "backend",
        "worker_processes 1;",
        &backend_http(BACKEND_PORT),
        &path.sink.wrapper(),
    )?;
    let mut cases = [
        ("XDP, no flood", Dropper::Xdp, false),
        ("XDP, flood", Dropper::Xdp, true),
        ("nftables, no flood", Dropper::Nftables, false),
        ("nftables, flood", Dropper::Nftables, true),
    ]
    .map(|(label, dropper, flood)| {
        (
            dropper,
            flood,
            Case {
                label,
                runs: Vec::new(),
                offered: Vec::new(),
            },
        )
    });
    let url = format!("http://{SERVER}:{EDGEGW_PORT}/b");
    let client = path.source.wrapper();
    let mut generators = std::collections::BTreeSet::new();
    for _ in 0..rounds {
        for dropper in [Dropper::Xdp, Dropper::Nftables] {
            let edgegw = Edgegw::start(dir, path, dropper)?;
            wait_answer(path, &url)?;
            // Warm the backend pool and the page cache.
            wrk_in(&client, &url, connections, 1, &[])?;
            for (_, flood, case) in cases.iter_mut().filter(|c| c.0 == dropper) {
                let generator = if *flood {
                    Some(Generator::start(path, duration + 2)?)
                } else {
                    None
                };
                let m = with_cpu(edgegw.proc.0.id(), || {
                    wrk_in(&client, &url, connections, duration, &[])
                })?;
                if let Some(g) = generator {
                    let (rate, how) = g.rate()?;
                    case.offered.push(rate);
                    generators.insert(how);
                }
                case.runs.push(m);
            }
            edgegw.stop(path)?;
        }
    }
    println!(
        "bench proxy flood: wrk from an allowed source ({CLIENT}) over a veth pair into a namespace, {connections} connections, {duration} s per run, median of {rounds} interleaved rounds; flood: 64-byte UDP from random sources in 10.0.0.0/8 into the same veth, as fast as the generator sends"
    );
    println!(
        "flood generator: {}",
        generators.into_iter().collect::<Vec<_>>().join(", ")
    );
    let width = 20;
    println!(
        "{:<width$} {:>12} {:>9} {:>9} {:>7} {:>12} {:>14}",
        "case", "requests/s", "p50 ms", "p99 ms", "errors", "CPU us/req", "flood frames/s"
    );
    let mut medians = Vec::new();
    for (_, _, case) in cases {
        let m = super::proxy::median(case.runs);
        let offered = median_of(case.offered);
        println!(
            "{:<width$} {:>12.0} {:>9.3} {:>9.3} {:>7} {:>12.1} {:>14.0}",
            case.label, m.rps, m.p50_ms, m.p99_ms, m.errors, m.cpu_us, offered
        );
        medians.push(m);
    }
    let [xdp_idle, xdp_flood, nft_idle, nft_flood] = &medians[..] else {
        unreachable!("four cases")
    };
    println!(
        "flood/no flood with XDP: requests/s {:.2}x (target >= 0.90x), p99 {:.2}x (target <= 2x)",
        xdp_flood.rps / xdp_idle.rps,
        xdp_flood.p99_ms / xdp_idle.p99_ms
    );
    println!(
        "flood/no flood with nftables: requests/s {:.2}x, p99 {:.2}x",
        nft_flood.rps / nft_idle.rps,
        nft_flood.p99_ms / nft_idle.p99_ms
    );
    println!(
        "under the flood, XDP/nftables: requests/s {:.2}x, p99 {:.2}x",
        xdp_flood.rps / nft_flood.rps,
        xdp_flood.p99_ms / nft_flood.p99_ms
    );
    Ok(())
}

fn median_of(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// edgegw in the sink namespace, with its XDP program on the veth
/// (denying the flood's sources, allowing the client's) or without XDP and
/// nftables dropping the flood.
struct Edgegw {
    proc: Proc,
    dropper: Dropper,
}

impl Edgegw {
    fn start(dir: &Path, path: &Testbed, dropper: Dropper) -> anyhow::Result<Edgegw> {
        let dev = &path.veth.1;
        let xdp = match dropper {
            Dropper::Xdp => format!(
                "[xdp]\niface = \"{dev}\"\nmode = \"native\"\ndetach_on_exit = true\n\
                 [dos]\ndeny = [\"10.0.0.0/8\"]\nallow = [\"{CLIENT}/32\"]\n"
            ),
            Dropper::Nftables => {
                // Without an XDP program, veth needs GRO on to take the
                // generator's XDP_TX frames.
                path.sink.run(&["ethtool", "-K", dev, "gro", "on"])?;
                let chain = format!("{{ type filter hook ingress device \"{dev}\" priority 0 ; }}");
                path.sink
                    .run(&["nft", "add", "table", "netdev", "egwflood"])?;
                path.sink
                    .run(&["nft", "add", "chain", "netdev", "egwflood", "in", &chain])?;
                path.sink.run(&[
                    "nft",
                    "add",
                    "rule",
                    "netdev",
                    "egwflood",
                    "in",
                    "ip",
                    "saddr",
                    "10.0.0.0/8",
                    "counter",
                    "drop",
                ])?;
                "[xdp]\nmode = \"off\"\n".to_string()
            }
        };
        let config = dir.join("edgegw.toml");
        std::fs::write(
            &config,
            format!(
                "[gateway]\nlisten = \"{SERVER}:{EDGEGW_PORT}\"\naccess_log = \"off\"\n{xdp}\
                 [[apis]]\nname = \"bench\"\npath = \"/\"\nbackend = \"http://127.0.0.1:{BACKEND_PORT}\"\n"
            ),
        )?;
        let child = path
            .sink
            .command(&[edgegw_bin().to_str().context("edgegw's path")?, "run"])
            .arg("--config")
            .arg(&config)
            .arg("--runtime-dir")
            .arg(dir.join("edgegw.run"))
            .env("EDGEGW_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting edgegw")?;
        Ok(Edgegw {
            proc: Proc(child),
            dropper,
        })
    }

    /// Stops edgegw (detaching its program) or removes nftables' rule.
    fn stop(mut self, path: &Testbed) -> anyhow::Result<()> {
        if !self.proc.stop(Duration::from_secs(10)) {
            bail!("edgegw did not stop within 10 s of SIGTERM");
        }
        if self.dropper == Dropper::Nftables {
            path.sink
                .run(&["nft", "delete", "table", "netdev", "egwflood"])?;
            path.sink
                .run(&["ethtool", "-K", &path.veth.1, "gro", "off"])?;
        }
        Ok(())
    }
}

/// Waits (10 s at most) until edgegw answers the client with 200.
fn wait_answer(path: &Testbed, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = path
            .source
            .command(&[
                "curl",
                "-s",
                "-m",
                "1",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                url,
            ])
            .output()
            .context("running curl")?;
        if out.stdout == b"200" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "edgegw does not answer {url} with 200 after 10 s (last: {:?})",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `flood_gen` flooding the veth from the source namespace for at most
/// `secs`; stopped (by pid) when dropped.
struct Generator {
    proc: Proc,
}

impl Generator {
    fn start(path: &Testbed, secs: u64) -> anyhow::Result<Generator> {
        let child = Command::new(&path.flood_gen)
            .args(["--netns", &path.source.path(), "--iface", &path.veth.0])
            .args(["--secs", &secs.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .context("starting flood_gen")?;
        // Let it load its program and reach full rate before wrk starts.
        std::thread::sleep(Duration::from_millis(500));
        Ok(Generator { proc: Proc(child) })
    }

    /// Waits for the generator's end; the frames per second it sent, and
    /// how (`edgegw_tests::flood`).
    fn rate(mut self) -> anyhow::Result<(f64, String)> {
        use std::io::Read;
        let mut text = String::new();
        if let Some(mut out) = self.proc.0.stdout.take() {
            out.read_to_string(&mut text)?;
        }
        let _ = self.proc.0.wait();
        // "sent FRAMES frames in SECS s by GENERATOR"
        let words: Vec<&str> = text.split_whitespace().collect();
        match words[..] {
            ["sent", frames, "frames", "in", secs, "s", "by", generator] => Ok((
                frames.parse::<f64>()? / secs.parse::<f64>()?,
                generator.to_string(),
            )),
            _ => bail!("flood_gen: unexpected output {text:?}"),
        }
    }
}
