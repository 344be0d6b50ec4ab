//! `cargo xtask fuzz [--secs N] [TARGET]`: runs the cargo-fuzz targets
//! under `fuzz/` (the hand-written HTTP/1.1 parsers, the canonical path,
//! the condition language, key templates, the catalog and
//! configuration parsers and policy expressions), each for a bounded
//! time, keeping each one's corpus in `fuzz/corpus/<target>` (the seeds are
//! committed, what the fuzzer adds is not). Prints the executions per
//! target; a crash stops the run with the input that caused it, which
//! becomes a regression test.
//!
//! cargo-fuzz is installed under `.tools/` when missing. Its
//! instrumentation needs nightly flags: the pinned toolchain takes them
//! with RUSTC_BOOTSTRAP, as `build-ebpf` does, rather than a second
//! toolchain rebuilding every dependency.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context, bail};

use crate::{build, root, setup};

const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Every target, in `fuzz/Cargo.toml`'s order.
pub const TARGETS: &[&str] = &[
    "request_head",
    "response_head",
    "chunked",
    "request_differential",
    "canonical_path",
    "condition",
    "key_template",
    "catalog",
    "policy_expr",
    "apim_lenient",
];

/// Seconds each target runs unless told otherwise.
pub const DEFAULT_SECS: u64 = 60;

fn cargo_fuzz_root() -> PathBuf {
    root().join(".tools/cargo-fuzz")
}

fn cargo_fuzz() -> PathBuf {
    cargo_fuzz_root().join("bin/cargo-fuzz")
}

/// Installs cargo-fuzz under `.tools/` unless it is there.
pub fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let works = Command::new(cargo_fuzz())
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Ok(());
    }
    println!(
        "setup: installing cargo-fuzz {CARGO_FUZZ_VERSION} into {}",
        cargo_fuzz_root().display()
    );
    setup::run(
        Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked", "--version"])
            .arg(CARGO_FUZZ_VERSION)
            .arg("--root")
            .arg(cargo_fuzz_root()),
    )
    .context("installing cargo-fuzz")
}

/// The longest input for `target`: past the limits it tests (an 8 KiB
/// request head limit, a 4 KiB chunk-size line).
fn max_len(target: &str) -> usize {
    match target {
        "request_head" | "request_differential" => 16 * 1024,
        "chunked" => 8 * 1024,
        "catalog" => 16 * 1024,
        _ => 4 * 1024,
    }
}

/// Seconds one input may take, and the memory the run may hold: a
/// document or condition that needs more is a finding, like a crash.
const INPUT_TIMEOUT_SECS: u64 = 10;
const RSS_LIMIT_MB: u64 = 2048;

/// The target's own dictionary (`fuzz/<target>.dict`), else the HTTP one.
fn dict(fuzz_dir: &std::path::Path, target: &str) -> PathBuf {
    let own = fuzz_dir.join(format!("{target}.dict"));
    if own.exists() {
        own
    } else {
        fuzz_dir.join("http.dict")
    }
}

/// What one target's run did.
struct Ran {
    target: &'static str,
    runs: u64,
    corpus: usize,
}

pub fn run(secs: u64, only: Option<&str>) -> anyhow::Result<()> {
    let targets: Vec<&'static str> = match only {
        None => TARGETS.to_vec(),
        Some(t) => match TARGETS.iter().find(|name| **name == t) {
            Some(name) => vec![*name],
            None => bail!(
                "unknown fuzz target {t:?}; choose one of {}",
                TARGETS.join(", ")
            ),
        },
    };
    if secs == 0 {
        bail!("--secs: give each target at least 1 second");
    }
    ensure_cargo_fuzz()?;
    // gateway-user embeds the XDP object.
    if !build::ebpf_object().exists() {
        build::ebpf()?;
    }
    let mut ran = Vec::new();
    for target in targets {
        ran.push(fuzz_one(target, secs)?);
    }
    println!("\nfuzz: {secs} s per target");
    println!(
        "{:<22} {:>12} {:>10} {:>8}",
        "target", "executions", "per s", "corpus"
    );
    for r in &ran {
        println!(
            "{:<22} {:>12} {:>10} {:>8}",
            r.target,
            r.runs,
            r.runs / secs,
            r.corpus
        );
    }
    Ok(())
}

fn fuzz_one(target: &'static str, secs: u64) -> anyhow::Result<Ran> {
    let fuzz_dir = root().join("fuzz");
    let corpus = fuzz_dir.join("corpus").join(target);
    // cargo fuzz's own places for the corpus and the crashing inputs.
    let artifacts = fuzz_dir.join("artifacts").join(target);
    println!("fuzz: {target} for {secs} s (corpus {})", corpus.display());
    let mut child = Command::new(cargo_fuzz())
        .current_dir(root())
        .args(["fuzz", "run", target, "--sanitizer", "none"])
        .arg("--fuzz-dir")
        .arg(&fuzz_dir)
        .arg("--target-dir")
        .arg(root().join("target/fuzz"))
        .arg("--")
        .arg(format!("-max_total_time={secs}"))
        .arg(format!("-max_len={}", max_len(target)))
        .arg(format!("-dict={}", dict(&fuzz_dir, target).display()))
        .arg(format!("-timeout={INPUT_TIMEOUT_SECS}"))
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .env("RUSTC_BOOTSTRAP", "1")
        .env("EDGEGW_EBPF_OBJECT", build::ebpf_object())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running cargo fuzz for {target}"))?;
    // The build's and libFuzzer's progress lines are shown; every line is
    // kept for the report.
    let mut log = Vec::new();
    for line in BufReader::new(child.stderr.take().expect("piped")).lines() {
        let line = line?;
        let noise = (line.starts_with('#') && !line.contains("pulse") && !line.contains("DONE"))
            || line.contains("# Uses:")
            || line.contains("Recommended dictionary");
        if !noise {
            eprintln!("{line}");
        }
        log.push(line);
    }
    let status = child.wait()?;
    if !status.success() {
        bail!(
            "fuzz target {target} failed: the input is under {}; reproduce it with \
             `cargo fuzz run --fuzz-dir fuzz {target} <file>` and add it as a regression test",
            artifacts.display()
        );
    }
    // libFuzzer ends with "Done N runs in S second(s)".
    let runs = log
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("Done ")?.split(' ').next()?.parse().ok())
        .with_context(|| format!("{target}: libFuzzer printed no run count"))?;
    Ok(Ran {
        target,
        runs,
        corpus: std::fs::read_dir(&corpus)?.count(),
    })
}
