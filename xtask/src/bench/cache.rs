//! `cargo xtask bench cache [--duration SECS] [--connections N] [--rounds N]`:
//! answering from the response cache. edgegw (`cache-lookup` +
//! `cache-store`, in memory) against nginx's `proxy_cache` doing the same
//! job — same nginx backend, same URL, both warmed so every measured
//! request is a hit — in alternating rounds of one run. Prints requests/s
//! and CPU per request of each and the ratios edgegw/nginx (target:
//! requests/s and CPU efficiency at least 1.0x).

use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::proxy::{Proc, backend, free_port, nginx, wait_port, wrk_with};

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
    println!(
        "bench cache: every request a cache hit; wrk, {connections} connections, {duration} s per run, median of {rounds} alternating rounds; nginx backend"
    );
    let contenders: Vec<(&str, u32)> = proxies.iter().map(|(n, _, p)| (*n, p.0.id())).collect();
    let medians = super::alternating_rounds("proxy", &contenders, duration, rounds, |i, secs| {
        wrk_with(&urls[i], connections, secs, &[])
    })?;
    let (ours, nginx) = (&medians[0], &medians[1]);
    println!(
        "ratio edgegw/nginx proxy_cache: requests/s {:.3}x (target >= 1.0x), CPU efficiency (nginx CPU per request / edgegw's) {:.3}x (target >= 1.0x), p99 {:.2}x",
        ours.rps / nginx.rps,
        nginx.cpu_us / ours.cpu_us,
        ours.p99_ms / nginx.p99_ms
    );
    Ok(())
}
