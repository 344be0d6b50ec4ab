//! `cargo xtask bench otlp [--duration SECS] [--connections N] [--rounds N]`:
//! the cost of OpenTelemetry tracing. Three edgegw, the same plain-HTTP
//! scenario as `bench proxy --only http`, measured in alternating rounds
//! in one run: OTLP off, `sampling_ratio = 0.01` and `1.0`, exporting to
//! an nginx that accepts every OTLP request (a collector that costs the
//! gateway only what a real one does: the HTTP exchange). Prints each
//! one's requests/s and CPU per request and the ratios to "off" (target:
//! 0.01 costs at most 3% of requests/s).

use std::{
    path::Path,
    process::{Command, Stdio},
};

use anyhow::Context;

use super::proxy::{Proc, backend, free_port, nginx, wait_port, wrk_with};
use crate::build::edgegw_bin;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (duration, connections, rounds) = super::load_options(args, 10)?;
    super::in_scratch_dir("otlp", |dir| measure(dir, duration, connections, rounds))
}

fn measure(dir: &Path, duration: u64, connections: u64, rounds: u64) -> anyhow::Result<()> {
    let (backend_port, _backend) = backend(dir)?;
    let collector_port = free_port()?;
    let _collector = nginx(
        dir,
        "collector",
        &format!(
            "  server {{ listen 127.0.0.1:{collector_port}; client_max_body_size 64m;\n    location /v1/ {{ return 200; }} }}"
        ),
    )?;
    wait_port(collector_port)?;
    let otlp = |ratio: &str| {
        format!(
            "[telemetry.otlp]\nendpoint = \"http://127.0.0.1:{collector_port}\"\nsampling_ratio = {ratio}\nmetrics_interval_ms = 10000\n"
        )
    };
    let variants = [
        ("off", String::new()),
        ("0.01", otlp("0.01")),
        ("1.0", otlp("1.0")),
    ];
    let mut gateways = Vec::new();
    for (label, telemetry) in &variants {
        let port = free_port()?;
        let proc = edgegw(dir, label, port, backend_port, telemetry)?;
        wait_port(port)?;
        gateways.push((*label, format!("http://127.0.0.1:{port}/b"), proc));
    }
    println!(
        "bench otlp: wrk, {connections} connections, {duration} s per run, median of {rounds} alternating rounds; edgegw with OTLP tracing off, at ratio 0.01 and 1.0 (plus request metrics every 10 s), exporting to an nginx that accepts every export"
    );
    let contenders: Vec<(&str, u32)> = gateways.iter().map(|(n, _, p)| (*n, p.0.id())).collect();
    let medians =
        super::alternating_rounds("tracing", &contenders, duration, rounds, |i, secs| {
            wrk_with(&gateways[i].1, connections, secs, &[])
        })?;
    let off = &medians[0];
    for ((label, _, _), m) in gateways.iter().zip(&medians).skip(1) {
        let target = if *label == "0.01" {
            " (target >= 0.97x)"
        } else {
            ""
        };
        println!(
            "ratio {label}/off: requests/s {:.3}x{target}, p99 {:.2}x, CPU per request {:.2}x",
            m.rps / off.rps,
            m.p99_ms / off.p99_ms,
            m.cpu_us / off.cpu_us
        );
    }
    Ok(())
}

/// An edgegw serving the plain-HTTP bench API, with `extra` appended to
/// its configuration (also used by `bench analytics`).
pub(super) fn edgegw(
    dir: &Path,
    label: &str,
    port: u16,
    backend_port: u16,
    telemetry: &str,
) -> anyhow::Result<Proc> {
    let config = dir.join(format!("edgegw-{label}.toml"));
    std::fs::write(
        &config,
        format!(
            "[gateway]\nlisten = \"127.0.0.1:{port}\"\naccess_log = \"off\"\n[xdp]\nmode = \"off\"\n\
             [[apis]]\nname = \"bench\"\npath = \"/\"\nbackend = \"http://127.0.0.1:{backend_port}\"\n{telemetry}"
        ),
    )?;
    let child = Command::new(edgegw_bin())
        .args(["run", "--config"])
        .arg(&config)
        .arg("--runtime-dir")
        .arg(dir.join(format!("edgegw-{label}.run")))
        .env("EDGEGW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting edgegw")?;
    Ok(Proc(child))
}
