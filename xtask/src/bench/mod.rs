//! `cargo xtask bench <target>`: measurements against a peer in the same run,
//! printed as ratios. Never part of `cargo xtask test`. `proxy` measures
//! wall-clock throughput and latency; `instructions` counts the CPU
//! instructions per request of the same scenarios under valgrind, a figure
//! that does not move with the load on the machine.

mod analytics;
pub(crate) mod apim;
mod cache;
mod choose;
mod flood;
pub(crate) mod haproxy;
pub(crate) mod instructions;
pub(crate) mod jwt;
mod mtls;
mod otlp;
mod pool;
pub(crate) mod proxy;
mod state;
mod sync;
mod xdp;

use anyhow::bail;

use crate::{
    build::{cargo, ebpf_object, edgegw_bin, edgegw_cp_bin},
    root, setup,
};

/// Runs the measuring binary `name` of the test crate (`tests/src/bin/`),
/// which shares the test harness, with the paths of the built binaries
/// (EDGEGW_BIN and EDGEGW_CP_BIN, when set, name other builds).
pub fn harness_bin(name: &str, args: &[String]) -> anyhow::Result<()> {
    setup::run(
        cargo()
            .current_dir(root())
            .args([
                "run",
                "--release",
                "--quiet",
                "-p",
                "edgegw-tests",
                "--bin",
                name,
                "--",
            ])
            .args(args)
            .env("EDGEGW_EBPF_OBJECT", ebpf_object())
            .env(
                "EDGEGW_BIN",
                std::env::var_os("EDGEGW_BIN").unwrap_or_else(|| edgegw_bin().into()),
            )
            .env(
                "EDGEGW_CP_BIN",
                std::env::var_os("EDGEGW_CP_BIN").unwrap_or_else(|| edgegw_cp_bin().into()),
            ),
    )
}

/// `--duration SECS`, `--connections N` and `--rounds N` of a wrk bench
/// (each at least 1), after installing the tools it drives.
fn load_options(args: &[String], duration: u64) -> anyhow::Result<(u64, u64, u64)> {
    use anyhow::Context;
    let (mut duration, mut connections, mut rounds) = (duration, 64u64, 3u64);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value: u64 = it
            .next()
            .with_context(|| format!("{a} needs a value"))?
            .parse()
            .with_context(|| format!("{a} needs a number"))?;
        match a.as_str() {
            "--duration" => duration = value.max(1),
            "--connections" => connections = value.max(1),
            "--rounds" => rounds = value.max(1),
            other => {
                bail!("unknown option {other}; use --duration SECS, --connections N or --rounds N")
            }
        }
    }
    proxy::install_tools()?;
    Ok((duration, connections, rounds))
}

/// Measures contenders (a name and the pid whose CPU time is counted) in
/// alternating rounds, so that load from elsewhere on the machine hits all
/// alike: `load(i, secs)` loads contender `i` for `secs`; first 2 s each
/// to warm up (pools, TLS state, page cache), then `rounds` rounds of
/// `duration`. Prints the median round of each as a table under `title`
/// and returns the medians in the order given.
fn alternating_rounds(
    title: &str,
    contenders: &[(&str, u32)],
    duration: u64,
    rounds: u64,
    load: impl Fn(usize, u64) -> anyhow::Result<proxy::Measure>,
) -> anyhow::Result<Vec<proxy::Measure>> {
    for i in 0..contenders.len() {
        load(i, 2)?;
    }
    let mut runs: Vec<Vec<proxy::Measure>> = contenders.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, ((_, pid), r)) in contenders.iter().zip(&mut runs).enumerate() {
            r.push(proxy::with_cpu(*pid, || load(i, duration))?);
        }
    }
    let width = contenders
        .iter()
        .map(|(name, _)| name.len())
        .chain([title.len()])
        .max()
        .unwrap_or(0);
    println!(
        "{title:<width$} {:>12} {:>9} {:>9} {:>7} {:>12}",
        "requests/s", "p50 ms", "p99 ms", "errors", "CPU us/req"
    );
    let medians: Vec<proxy::Measure> = runs.into_iter().map(proxy::median).collect();
    for ((name, _), m) in contenders.iter().zip(&medians) {
        println!(
            "{name:<width$} {:>12.0} {:>9.3} {:>9.3} {:>7} {:>12.1}",
            m.rps, m.p50_ms, m.p99_ms, m.errors, m.cpu_us
        );
    }
    Ok(medians)
}

/// Runs `measure` in a fresh scratch folder of bench `name`, removed after.
fn in_scratch_dir(
    name: &str,
    measure: impl FnOnce(&std::path::Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("edgegw-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = measure(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Runs the named benchmark.
pub fn run(target: &str, args: &[String]) -> anyhow::Result<()> {
    // Each benchmark adds an arm here: "xdp", "proxy", ...
    match target {
        "xdp" => xdp::run(args),
        "proxy" => proxy::run(args),
        "instructions" => instructions::run(args),
        "choose" => choose::run(args),
        "pool" => pool::run(args),
        // Cache hits against nginx's proxy_cache.
        "cache" => cache::run(args),
        // TLS with client certificates against nginx's ssl_verify_client.
        "mtls" => mtls::run(args),
        // Kept as an alias: the apim scenario of `bench proxy` and the
        // catalog's memory and load time.
        "apim" => {
            let mut args = args.to_vec();
            args.extend(["--only".to_string(), "apim".to_string()]);
            proxy::run(&args)
        }
        "sync" => sync::run(args),
        // The control plane's analytics ingest rate and storage per
        // gateway-day (`tests/src/bin/ingest_bench.rs`).
        "ingest" => harness_bin("ingest_bench", args),
        // OTLP tracing at ratio 0.01 and 1.0 against off, same run.
        "otlp" => otlp::run(args),
        // Request analytics on (the default) against off, same run.
        "analytics" => analytics::run(args),
        // Cluster-wide rate limits in Redis: accuracy over three gateways
        // and the cost against a local limit (`tests/src/bin/cluster_bench.rs`).
        "cluster" => {
            setup::ensure_packages_without_services(&["wrk", "redis-server"])?;
            harness_bin("cluster_bench", args)
        }
        "spray" | "reload" => state::run(target, args),
        // The policy-expression engine against native key templates, in
        // process (`tests/src/bin/expr_bench.rs`).
        "expr" => harness_bin("expr_bench", args),
        // Bytes of JavaScript and CSS per page of the web console, then
        // the fleet page's first render with 1000 gateways in chromium
        // (`tests/src/bin/console_bench.rs`).
        "console" => {
            crate::console::bench()?;
            harness_bin("console_bench", args)
        }
        other => bail!(
            "unknown benchmark \"{other}\"; available: xdp, proxy, instructions, apim, choose, pool, cache, mtls, sync, ingest, otlp, analytics, cluster, spray, reload, expr, console"
        ),
    }
}
