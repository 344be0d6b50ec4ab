//! `cargo xtask bench pool [--duration SECS] [--connections N] [--rounds N]`:
//! the cost of a backend pool on the request path. Two edgegw instances,
//! same run, alternating rounds: one forwarding to a single nginx backend,
//! one to a pool of three (weighted round robin, active health checks,
//! passive ejection and a circuit breaker configured). The three members
//! are three listeners of the one nginx the single backend is (its first
//! listener): both gateways then wake the same backend processes as
//! often, and the difference is the pool's own cost on the request path
//! (three nginx instances on a 2-core machine cost the sender more in
//! wake-ups and context switches than the proxy does). Prints requests/s
//! and CPU per request of each, and pool/single ratios (target: CPU per
//! request within 2%).

use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::proxy::{Proc, backend_http, free_port, nginx, wait_port, wrk_with};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (duration, connections, rounds) = super::load_options(args, 5)?;
    super::in_scratch_dir("pool", |dir| measure(dir, duration, connections, rounds))
}

fn start(dir: &std::path::Path, name: &str, port: u16, backend: &str) -> anyhow::Result<Proc> {
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:{port}\"\naccess_log = \"off\"\n[xdp]\nmode = \"off\"\n{backend}\n\
         [[apis]]\nname = \"bench\"\npath = \"/\"\nbackend = \"b\"\n"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config)?;
    let child = Command::new(crate::build::edgegw_bin())
        .args(["run", "--config"])
        .arg(&path)
        .arg("--runtime-dir")
        .arg(dir.join(format!("{name}.run")))
        .env("EDGEGW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting edgegw")?;
    Ok(Proc(child))
}

fn measure(
    dir: &std::path::Path,
    duration: u64,
    connections: u64,
    rounds: u64,
) -> anyhow::Result<()> {
    let ports = [free_port()?, free_port()?, free_port()?];
    let http: Vec<String> = ports.iter().map(|&p| backend_http(p)).collect();
    let _nginx: Proc = nginx(dir, "backend", &http.join("\n"))?;
    for port in ports {
        wait_port(port)?;
    }
    let single = format!(
        "[[backends]]\nname = \"b\"\nurl = \"http://127.0.0.1:{}\"\n",
        ports[0]
    );
    let members: Vec<String> = ports
        .iter()
        .zip([5, 3, 2])
        .map(|(port, w)| format!("{{ url = \"http://127.0.0.1:{port}\", weight = {w} }}"))
        .collect();
    let pool = format!(
        "[[backends]]\nname = \"b\"\nmembers = [{}]\n[backends.health_check]\npath = \"/\"\ninterval_ms = 1000\ntimeout_ms = 500\n\
         [backends.circuit_breaker]\nfailure_count = 100\ninterval_secs = 10\ntrip_duration_secs = 5\n",
        members.join(", ")
    );
    let mut proxies = Vec::new();
    for (name, backend) in [("single", single), ("pool", pool)] {
        let port = free_port()?;
        let proc = start(dir, name, port, &backend)?;
        wait_port(port)?;
        let url = format!("http://127.0.0.1:{port}/b");
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &url])
            .output()
            .context("running curl")?;
        if out.stdout != b"200" {
            bail!(
                "{name}: {url} answered {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        proxies.push((name, url, proc));
    }
    println!(
        "bench pool: wrk, {connections} connections, {duration} s per run, median of {rounds} alternating rounds; one nginx, three listeners"
    );
    let contenders: Vec<(&str, u32)> = proxies.iter().map(|(n, _, p)| (*n, p.0.id())).collect();
    let medians = super::alternating_rounds("edgegw", &contenders, duration, rounds, |i, secs| {
        wrk_with(&proxies[i].1, connections, secs, &[])
    })?;
    let (single, pool) = (&medians[0], &medians[1]);
    println!(
        "ratio pool/single: requests/s {:.3}x, CPU per request {:.3}x (target <= 1.02x), p99 {:.2}x",
        pool.rps / single.rps,
        pool.cpu_us / single.cpu_us,
        pool.p99_ms / single.p99_ms
    );
    Ok(())
}
