//! `cargo xtask bench cache [--duration SECS] [--connections N] [--rounds N]`:
//! answering from the response cache. edgegw (`cache-lookup` +
//! `cache-store`, in memory) against nginx's `proxy_cache` doing the same
//! job — same nginx backend, same URL, both warmed so every measured
//! request is a hit — in alternating rounds of one run. Prints requests/s
//! and CPU per request of each and the ratios edgegw/nginx (target:
//! requests/s and CPU efficiency at least 1.0x).

use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::proxy::{Proc, backend, free_port, median, nginx, wait_port, with_cpu, wrk_with};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (duration, connections, rounds) = super::load_options(args, 5)?;
    super::in_scratch_dir("cache", |dir| measure(dir, duration, connections, rounds))
}

const CATALOG: &str = "apis:\n  - name: bench\n    subscription_required: false\n    policies:\n      inbound:\n        - cache-lookup: {vary_by_developer: false, vary_by_developer_groups: false, caching_type: internal}\n      outbound:\n        - cache-store: {duration: 3600}\n";

fn edgegw(dir: &std::path::Path, port: u16, backend: u16) -> anyhow::Result<Proc> {
    let catalog = dir.join("catalog.yaml");
    std::fs::write(&catalog, CATALOG)?;
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:{port}\"\naccess_log = \"off\"\n[xdp]\nmode = \"off\"\n\
         [[apis]]\nname = \"bench\"\npath = \"/\"\nbackend = \"http://127.0.0.1:{backend}\"\n\
         [catalog]\nfile = \"{}\"\n",
        catalog.display()
    );
    let path = dir.join("edgegw.toml");
    std::fs::write(&path, config)?;
    let child = Command::new(crate::build::edgegw_bin())
        .args(["run", "--config"])
        .arg(&path)
        .arg("--runtime-dir")
        .arg(dir.join("edgegw.run"))
        .env("EDGEGW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting edgegw")?;
    Ok(Proc(child))
}

/// nginx caching the backend's answers for an hour, as edgegw does.
fn nginx_cache(dir: &std::path::Path, port: u16, backend: u16) -> anyhow::Result<Proc> {
    let cache = dir.join("nginx-cache");
    std::fs::create_dir_all(&cache)?;
    nginx(
        dir,
        "proxy_cache",
        &format!(
            "  proxy_cache_path {} levels=1:2 keys_zone=c:10m max_size=64m inactive=60m use_temp_path=off;\n\
             upstream backend {{ server 127.0.0.1:{backend}; keepalive 128; keepalive_requests 100000; }}\n\
             server {{ listen 127.0.0.1:{port} reuseport backlog=4096; keepalive_requests 100000;\n\
               location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\";\n\
                 proxy_cache c; proxy_cache_valid 200 1h; proxy_cache_key $scheme$host$request_uri;\n\
                 add_header X-Cache $upstream_cache_status; }} }}",
            cache.display()
        ),
    )
}

/// The `x-cache` of a GET of `url`.
fn x_cache(url: &str) -> anyhow::Result<String> {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-D", "-", url])
        .output()
        .context("running curl")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("x-cache")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default())
}

fn measure(
    dir: &std::path::Path,
    duration: u64,
    connections: u64,
    rounds: u64,
) -> anyhow::Result<()> {
    let (backend_port, _backend) = backend(dir)?;
    let (ours, theirs) = (free_port()?, free_port()?);
    let proxies = [
        ("edgegw", ours, edgegw(dir, ours, backend_port)?),
        ("nginx", theirs, nginx_cache(dir, theirs, backend_port)?),
    ];
    let mut urls = Vec::new();
    for (name, port, _) in &proxies {
        wait_port(*port)?;
        let url = format!("http://127.0.0.1:{port}/cached");
        // The first request fills the cache; from the second on, hits.
        x_cache(&url)?;
        std::thread::sleep(std::time::Duration::from_millis(200));
        let second = x_cache(&url)?;
        if second != "HIT" {
            bail!("{name}: {url} is not answered from its cache (x-cache: {second:?})");
        }
        urls.push(url);
    }
    for url in &urls {
        wrk_with(url, connections, 2, &[])?;
    }
    let mut runs: Vec<Vec<_>> = vec![Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (i, (_, _, proc)) in proxies.iter().enumerate() {
            runs[i].push(with_cpu(proc.0.id(), || {
                wrk_with(&urls[i], connections, duration, &[])
            })?);
        }
    }
    println!(
        "bench cache: every request a cache hit; wrk, {connections} connections, {duration} s per run, median of {rounds} alternating rounds; nginx backend"
    );
    println!(
        "{:<8} {:>12} {:>9} {:>9} {:>7} {:>12}",
        "proxy", "requests/s", "p50 ms", "p99 ms", "errors", "CPU us/req"
    );
    let mut medians = Vec::new();
    for ((name, _, _), ms) in proxies.iter().zip(runs) {
        let m = median(ms);
        println!(
            "{name:<8} {:>12.0} {:>9.3} {:>9.3} {:>7} {:>12.1}",
            m.rps, m.p50_ms, m.p99_ms, m.errors, m.cpu_us
        );
        medians.push(m);
    }
    let (ours, nginx) = (&medians[0], &medians[1]);
    println!(
        "ratio edgegw/nginx proxy_cache: requests/s {:.3}x (target >= 1.0x), CPU efficiency (nginx CPU per request / edgegw's) {:.3}x (target >= 1.0x), p99 {:.2}x",
        ours.rps / nginx.rps,
        nginx.cpu_us / ours.cpu_us,
        ours.p99_ms / nginx.p99_ms
    );
    Ok(())
}
