//! `cargo xtask bench analytics [--duration SECS] [--connections N] [--rounds N]`:
//! the cost of request analytics. Two edgegw, the same plain-HTTP scenario
//! as `bench otlp` (an API with an operation, so each request has a full
//! analytics key), measured in alternating rounds in one run: analytics
//! on (the default) and `[analytics] enabled = false`. Prints each one's
//! requests/s and CPU per request and the ratios on/off (target: analytics
//! cost at most 2%, i.e. requests/s >= 0.98x and CPU per request <= 1.02x).

use std::path::Path;

use super::proxy::{Measure, backend, free_port, median, wait_port, with_cpu, wrk_with};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (duration, connections, rounds) = super::load_options(args, 10)?;
    super::in_scratch_dir("analytics", |dir| {
        measure(dir, duration, connections, rounds)
    })
}

fn measure(dir: &Path, duration: u64, connections: u64, rounds: u64) -> anyhow::Result<()> {
    let (backend_port, _backend) = backend(dir)?;
    let operation = "[[apis.operations]]\nname = \"any\"\nmethod = \"*\"\nurl = \"/*\"\n";
    let variants = [
        ("off", format!("{operation}[analytics]\nenabled = false\n")),
        ("on", operation.to_string()),
    ];
    let mut gateways = Vec::new();
    for (label, extra) in &variants {
        let port = free_port()?;
        let proc = super::otlp::edgegw(dir, label, port, backend_port, extra)?;
        wait_port(port)?;
        gateways.push((*label, format!("http://127.0.0.1:{port}/b"), proc));
    }
    println!(
        "bench analytics: wrk, {connections} connections, {duration} s per run, median of {rounds} alternating rounds; edgegw with request analytics off and on (the default)"
    );
    for (_, url, _) in &gateways {
        wrk_with(url, connections, 2, &[])?;
    }
    let mut runs: Vec<Vec<Measure>> = gateways.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        // Alternate which goes first, so drift over the run favours neither.
        let mut order: Vec<usize> = (0..gateways.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (_, url, proc) = &gateways[i];
            runs[i].push(with_cpu(proc.0.id(), || {
                wrk_with(url, connections, duration, &[])
            })?);
        }
    }
    let medians: Vec<Measure> = runs.into_iter().map(median).collect();
    println!(
        "{:<10} {:>12} {:>9} {:>9} {:>7} {:>12}",
        "analytics", "requests/s", "p50 ms", "p99 ms", "errors", "CPU us/req"
    );
    for ((label, _, _), m) in gateways.iter().zip(&medians) {
        println!(
            "{label:<10} {:>12.0} {:>9.3} {:>9.3} {:>7} {:>12.1}",
            m.rps, m.p50_ms, m.p99_ms, m.errors, m.cpu_us
        );
    }
    let (off, on) = (&medians[0], &medians[1]);
    println!(
        "ratio on/off: requests/s {:.3}x (target >= 0.98x), p99 {:.2}x, CPU per request {:.3}x (target <= 1.02x)",
        on.rps / off.rps,
        on.p99_ms / off.p99_ms,
        on.cpu_us / off.cpu_us
    );
    Ok(())
}
