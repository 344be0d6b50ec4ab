//! The "apim" scenario of `cargo xtask bench proxy`: the API-management
//! path, against nginx doing the same job, same backend, same run:
//!
//! - edgegw: subscription key check (header, hashed keys), `rate-limit-by-key`
//!   per subscription with a limit that never triggers, `set-header`;
//! - HAProxy: a `map` of the valid keys, a stick table's per-key request
//!   rate, `set-header` (see `haproxy`);
//! - nginx: a `map` of the valid keys (401 otherwise), `limit_req` keyed by
//!   the key with a rate that never triggers, `proxy_set_header` and
//!   `add_header`; as the `Same` peer, also the headers edgegw writes
//!   (see `Peer`), including the `RateLimit` headers of its limit.
//!
//! Then the cost of a large catalog: edgegw's resident memory and time to
//! ready with N subscriptions (default 100000), against edgegw without a
//! catalog.

use std::{
    fmt::Write as _,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use super::proxy::{Peer, Proc, Target, free_port, nginx, wait_port, wrapped};
use crate::build::edgegw_bin;

pub(crate) const KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";
/// Subscriptions in the throughput scenario (both proxies know them all).
const KEYS: usize = 1000;

/// The API-management proxies (edgegw and an nginx per `Peer`), running;
/// stopped on drop.
pub(super) struct Apim {
    _procs: Vec<Proc>,
    pub(super) edgegw: Target,
    pub(super) peers: Vec<Target>,
    /// The request header with a valid key.
    pub(super) key_header: String,
}

pub(crate) fn key(i: usize) -> String {
    format!("bench-key-{i:08}")
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A catalog with `n` subscriptions to the API "bench", keys `key(i)`.
pub(crate) fn catalog(n: usize) -> String {
    let mut text = String::from(
        "apis:\n  - name: bench\n    policies:\n      inbound:\n\
         \x20       - rate-limit-by-key: {calls: 1000000000, renewal_period: 60, counter_key: \"{subscription_id}\"}\n\
         \x20       - set-header: {name: X-Gateway, value: edgegw}\n\
         \x20     outbound:\n        - set-header: {name: X-Served-By, value: edgegw}\nsubscriptions:\n",
    );
    for i in 0..n {
        let _ = writeln!(
            text,
            "  - {{id: s{i}, scope: \"api:bench\", primary_key_sha256: {}}}",
            hex_sha256(&key(i))
        );
    }
    text
}

pub(super) fn start_edgegw(
    dir: &Path,
    name: &str,
    port: u16,
    backend_port: u16,
    catalog: Option<&str>,
) -> anyhow::Result<Proc> {
    start_edgegw_with(dir, name, port, backend_port, catalog, &[], &edgegw_bin())
}

/// edgegw proxying 127.0.0.1:`port` to the backend, with the API-management
/// `catalog` when given, started by `wrapper` (a program and its options,
/// such as valgrind's) when that is not empty.
pub(super) fn start_edgegw_with(
    dir: &Path,
    name: &str,
    port: u16,
    backend_port: u16,
    catalog: Option<&str>,
    wrapper: &[String],
    bin: &Path,
) -> anyhow::Result<Proc> {
    let mut config = format!(
        "[gateway]\nlisten = \"127.0.0.1:{port}\"\naccess_log = \"off\"\n[xdp]\nmode = \"off\"\n\
         [[apis]]\nname = \"bench\"\npath = \"/\"\nbackend = \"http://127.0.0.1:{backend_port}\"\n"
    );
    if let Some(text) = catalog {
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, text)?;
        let _ = write!(config, "[catalog]\nfile = \"{}\"\n", file.display());
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config)?;
    // Its own runtime dir: the plain proxy runs at the same time.
    let child = wrapped(wrapper, bin)
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

/// Starts nginx and edgegw doing the API-management job in front of the
/// backend on `backend_port`, and checks both accept the key and refuse a
/// wrong one.
pub(super) fn start(dir: &Path, backend_port: u16) -> anyhow::Result<Apim> {
    let mut procs = Vec::new();
    let mut peers = Vec::new();
    for peer in Peer::ALL {
        let port = free_port()?;
        let proc = nginx(
            dir,
            &format!("apim-{}", peer.label()),
            &nginx_apim(KEYS, port, backend_port, peer),
        )?;
        wait_port(port)?;
        peers.push(Target {
            label: peer.label(),
            url: format!("http://127.0.0.1:{port}/b"),
            pid: proc.0.id(),
        });
        procs.push(proc);
    }
    let hp = free_port()?;
    let haproxy = super::haproxy::start(
        dir,
        "apim-haproxy",
        &super::haproxy::apim_config(dir, KEYS, hp, backend_port)?,
        &[],
    )?;
    wait_port(hp)?;
    peers.push(Target {
        label: "haproxy",
        url: format!("http://127.0.0.1:{hp}/b"),
        pid: haproxy.0.id(),
    });
    procs.push(haproxy);
    let ep = free_port()?;
    let proc = start_edgegw(dir, "apim", ep, backend_port, Some(&catalog(KEYS)))?;
    wait_port(ep)?;
    let edgegw = Target {
        label: "edgegw",
        url: format!("http://127.0.0.1:{ep}/b"),
        pid: proc.0.id(),
    };
    procs.push(proc);

    let good = format!("{KEY_HEADER}: {}", key(KEYS / 2));
    // Each must refuse a wrong key and accept the right one.
    for url in std::iter::once(&edgegw.url).chain(peers.iter().map(|p| &p.url)) {
        expect_statuses(
            url,
            &good,
            &format!("{KEY_HEADER}: wrong"),
            "the key",
            "a wrong one",
        )?;
    }
    Ok(Apim {
        _procs: procs,
        edgegw,
        peers,
        key_header: good,
    })
}

/// The `http` body of nginx doing the API-management job on 127.0.0.1:`port`
/// in front of the backend on `backend_port`, knowing `keys` subscription
/// keys, writing the headers `peer` asks for.
pub(super) fn nginx_apim(keys: usize, port: u16, backend_port: u16, peer: Peer) -> String {
    let mut map =
        String::from("  map $http_ocp_apim_subscription_key $subscription {\n    default \"\";\n");
    for i in 0..keys {
        let _ = writeln!(map, "    \"{}\" s{i};", key(i));
    }
    map.push_str("  }\n");
    // The lean peer is the earlier comparison, which had no
    // `X-Forwarded-Proto` here. edgegw's limit announces itself (its
    // remaining count changes; the text is as long).
    let same_only = match peer {
        Peer::Same => {
            "proxy_set_header X-Forwarded-Proto $scheme;\n\
             add_header RateLimit-Policy '\"rate-limit-by-key\";q=1000000000;w=60';\n\
             add_header RateLimit '\"rate-limit-by-key\";r=999999999;t=60';\n"
        }
        Peer::Lean => "",
    };
    format!(
        "{map}{maps}  limit_req_zone $subscription zone=subs:10m rate=100000000r/s;\n\
             upstream backend {{ server 127.0.0.1:{backend_port}; keepalive 128; keepalive_requests 100000; }}\n\
             server {{ listen 127.0.0.1:{port} backlog=4096; keepalive_requests 100000;\n\
               location / {{\n\
                 if ($subscription = \"\") {{ return 401 \"{{\\\"statusCode\\\": 401}}\"; }}\n\
                 limit_req zone=subs burst=100000000 nodelay;\n\
                 proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\";\n\
                 proxy_set_header {KEY_HEADER} \"\"; proxy_set_header X-Gateway edgegw;\n\
                 proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                 {headers}{same_only}\
                 add_header X-Served-By nginx; }} }}",
        maps = peer.maps(),
        headers = peer.headers(),
    )
}

/// Resident memory and time to ready with `n` subscriptions, against
/// edgegw without a catalog.
pub(super) fn catalog_cost(dir: &Path, n: usize) -> anyhow::Result<()> {
    let text = catalog(n);
    let backend_port = free_port()?;
    let mut rows = Vec::new();
    for (name, catalog) in [("no catalog", None), ("catalog", Some(text.as_str()))] {
        let port = free_port()?;
        let started = Instant::now();
        let proc = start_edgegw(dir, &name.replace(' ', "-"), port, backend_port, catalog)?;
        wait_port(port)?;
        // The listener is bound before the catalog loads: ready is when a
        // request is answered.
        first_answer(port)?;
        let ready = started.elapsed();
        let rss_kib = rss_kib(proc.0.id())?;
        rows.push((name, ready, rss_kib));
    }
    println!(
        "bench apim: edgegw with {n} subscriptions ({} bytes of YAML)",
        text.len()
    );
    for (name, ready, rss) in &rows {
        println!(
            "{name:<11} time to ready {:>8.1} ms   resident memory {:>8.1} MiB",
            ready.as_secs_f64() * 1000.0,
            *rss as f64 / 1024.0
        );
    }
    let (base, full) = (&rows[0], &rows[1]);
    println!(
        "catalog cost: +{:.1} MiB ({:.0} bytes per subscription), +{:.0} ms to load; memory ratio {:.2}x",
        (full.2 - base.2) as f64 / 1024.0,
        (full.2 - base.2) as f64 * 1024.0 / n as f64,
        (full.1.as_secs_f64() - base.1.as_secs_f64()) * 1000.0,
        full.2 as f64 / base.2 as f64
    );
    Ok(())
}

fn first_answer(port: u16) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(120)))?;
    stream.write_all(b"GET /b HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut first = [0u8; 1];
    stream
        .read_exact(&mut first)
        .context("edgegw did not answer within 120 s")?;
    Ok(())
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS in /proc/PID/status")
}

/// Checks `url` answers 200 with the request header `good` and 401 with
/// `bad` (each "Name: value"), so that a proxy measured does the job.
pub(super) fn expect_statuses(
    url: &str,
    good: &str,
    bad: &str,
    good_name: &str,
    bad_name: &str,
) -> anyhow::Result<()> {
    let status = |header: &str| -> anyhow::Result<String> {
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                header,
                url,
            ])
            .output()
            .context("running curl")?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (ok, refused) = (status(good)?, status(bad)?);
    if ok != "200" || refused != "401" {
        bail!(
            "{url}: expected 200 with {good_name} and 401 with {bad_name}, got {ok} and {refused}"
        );
    }
    Ok(())
}
