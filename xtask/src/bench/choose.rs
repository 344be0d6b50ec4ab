//! `cargo xtask bench choose [--duration SECS] [--connections N] [--rounds N]`:
//! the cost of `choose` on the request path. Two edgegw instances in front
//! of the same nginx backend, same run, alternating rounds:
//!
//! - plain: inbound `set-header`, outbound `set-header`;
//! - choose: the same two policies, each in the third `when` of a `choose`
//!   (two conditions that do not hold are evaluated first: a header
//!   comparison and a query `exists` + client-IP prefix).
//!
//! Prints requests/s and CPU per request of each, and choose/plain ratios.

use std::process::Command;

use anyhow::{Context, bail};

use super::{
    apim::start_edgegw,
    proxy::{backend, free_port, wait_port, wrk_with},
};

const PLAIN: &str = "apis:
  - name: bench
    subscription_required: false
    policies:
      inbound:
        - set-header: {name: x-tier-seen, value: gold}
      outbound:
        - set-header: {name: x-served, value: gold}
";

const CHOOSE: &str = "apis:
  - name: bench
    subscription_required: false
    policies:
      inbound:
        - choose:
            - when: \"{header:x-tier} == 'silver'\"
              policies: [{set-header: {name: x-tier-seen, value: silver}}]
            - when: \"{query:debug} exists and {client_ip} starts-with '10.'\"
              policies: [{set-header: {name: x-debug, value: '1'}}]
            - when: \"{header:x-tier} == 'gold'\"
              policies: [{set-header: {name: x-tier-seen, value: gold}}]
      outbound:
        - choose:
            - when: \"{header:x-tier} == 'silver'\"
              policies: [{set-header: {name: x-served, value: silver}}]
            - when: \"{query:debug} exists\"
              policies: [{set-header: {name: x-served, value: debug}}]
            - when: \"{header:x-tier} == 'gold'\"
              policies: [{set-header: {name: x-served, value: gold}}]
";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (duration, connections, rounds) = super::load_options(args, 5)?;
    super::in_scratch_dir("choose", |dir| measure(dir, duration, connections, rounds))
}

fn measure(
    dir: &std::path::Path,
    duration: u64,
    connections: u64,
    rounds: u64,
) -> anyhow::Result<()> {
    let (backend_port, _backend) = backend(dir)?;
    let mut proxies = Vec::new();
    for (name, catalog) in [("plain", PLAIN), ("choose", CHOOSE)] {
        let port = free_port()?;
        let proc = start_edgegw(dir, name, port, backend_port, Some(catalog))?;
        wait_port(port)?;
        let url = format!("http://127.0.0.1:{port}/b");
        check(&url)?;
        proxies.push((name, url, proc));
    }
    let header = ["x-tier: gold"];
    println!(
        "bench choose: wrk, {connections} connections, {duration} s per run, median of {rounds} alternating rounds, same backend"
    );
    let contenders: Vec<(&str, u32)> = proxies.iter().map(|(n, _, p)| (*n, p.0.id())).collect();
    let medians = super::alternating_rounds("edgegw", &contenders, duration, rounds, |i, secs| {
        wrk_with(&proxies[i].1, connections, secs, &header)
    })?;
    let (plain, choose) = (&medians[0], &medians[1]);
    println!(
        "ratio choose/plain: requests/s {:.2}x, CPU per request {:.2}x, p99 {:.2}x",
        choose.rps / plain.rps,
        choose.cpu_us / plain.cpu_us,
        choose.p99_ms / plain.p99_ms
    );
    Ok(())
}

/// Both proxies must answer 200 with the header the branch sets.
fn check(url: &str) -> anyhow::Result<()> {
    let out = Command::new("curl")
        .args([
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-H",
            "x-tier: gold",
            url,
        ])
        .output()
        .context("running curl")?;
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") || !head.contains("x-served: gold") {
        bail!("{url}: expected 200 with x-served: gold, got:\n{head}");
    }
    Ok(())
}
