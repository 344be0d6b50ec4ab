//! `cargo xtask bench instructions [--only http|apim]`: the user-space CPU
//! instructions each proxy executes per request, counted by valgrind's
//! callgrind; the deterministic companion of `bench proxy`, whose
//! wall-clock ratios move with the load on the machine.
//!
//! Each proxy (edgegw, Debian's nginx doing the same job with a single
//! process, and Debian's HAProxy with one thread) runs under callgrind twice, serving 200 and then 2200 requests
//! one after the other on one keep-alive connection; the difference of the
//! two totals over 2000 is the cost of a request, start-up and shutdown
//! cancelling out. nginx is measured as both peers of `bench proxy` (see
//! `Peer`). The scenarios are those of `bench proxy`: "http", the
//! plain reverse proxy, and "apim" (key check, rate limit, set-header;
//! see `apim`) with 100 subscriptions. The backend is the same nginx
//! answering 23 bytes, outside valgrind.
//!
//! Options: `--edgegw PATH` measures another build than
//! `target/production/edgegw` (a release build, say, to compare two
//! commits without building each with PGO); `--baseline PATH` measures a
//! second edgegw on the same requests and prints the first's ratio to it;
//! `--no-nginx` skips the peers (nginx and HAProxy); `--keep DIR` keeps callgrind's output files
//! there, for `callgrind_annotate`.

use std::{
    fmt::Write as _,
    io::{BufRead, BufReader, Read, Write},
    net::{Shutdown, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, bail};

use super::{
    apim::{KEY_HEADER, catalog, key, nginx_apim, start_edgegw_with},
    proxy::{Peer, Proc, backend, free_port, install_tools, nginx_proxy, nginx_with, wait_port},
};
use crate::{build::edgegw_bin, setup};

const SCENARIOS: [&str; 2] = ["http", "apim"];
/// Requests of the short and of the long run: the cost of a request is the
/// difference of their totals over `MANY - FEW`.
const FEW: usize = 200;
const MANY: usize = 2200;
/// Subscriptions both proxies know in the "apim" scenario.
const SUBSCRIPTIONS: usize = 100;
/// nginx as one process, so that valgrind sees the process that serves.
const NGINX_SINGLE: &str = "master_process off;\nworker_processes 1;";

const USAGE: &str = "usage: cargo xtask bench instructions [--only http|apim] [--edgegw PATH] [--baseline PATH] [--no-nginx] [--keep DIR]";

/// What to measure.
struct Options {
    only: Option<String>,
    edgegw: PathBuf,
    baseline: Option<PathBuf>,
    nginx: bool,
    keep: Option<PathBuf>,
}

fn options(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options {
        only: None,
        edgegw: edgegw_bin(),
        baseline: None,
        nginx: true,
        keep: None,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if flag == "--no-nginx" {
            o.nginx = false;
            continue;
        }
        let Some(value) = args.next() else {
            bail!("{flag}: missing value; {USAGE}");
        };
        match flag.as_str() {
            "--only" if SCENARIOS.contains(&value.as_str()) => o.only = Some(value.clone()),
            "--only" => bail!("--only {value}: unknown scenario; use one of {SCENARIOS:?}"),
            "--edgegw" => o.edgegw = value.into(),
            "--baseline" => o.baseline = Some(value.into()),
            "--keep" => o.keep = Some(value.into()),
            _ => bail!("{flag}: unknown option; {USAGE}"),
        }
    }
    for bin in std::iter::once(&o.edgegw).chain(&o.baseline) {
        if !bin.is_file() {
            bail!(
                "{}: no edgegw binary there; build it (cargo xtask build) or name one with --edgegw",
                bin.display()
            );
        }
    }
    Ok(o)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let o = options(args)?;
    install_tools()?;
    setup::ensure_packages(&["valgrind"])?;
    let version = Command::new("valgrind").arg("--version").output();
    if !version.is_ok_and(|v| v.status.success()) {
        bail!("valgrind does not run after installing Debian's valgrind package");
    }
    let dir =
        std::env::temp_dir().join(format!("edgegw-bench-instructions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = measure_all(&dir, &o);
    if let Some(keep) = &o.keep {
        std::fs::create_dir_all(keep)?;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_file()
                && let Some(name) = path.file_name()
            {
                std::fs::copy(&path, keep.join(name))?;
            }
        }
        println!("callgrind output kept in {}", keep.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure_all(dir: &Path, o: &Options) -> anyhow::Result<()> {
    let only = o.only.as_deref();
    let (backend_port, _backend) = backend(dir)?;
    println!(
        "bench instructions: user-space instructions per request under callgrind ({} requests on one keep-alive connection; deterministic, unlike the wall-clock ratios)",
        MANY - FEW
    );
    for scenario in SCENARIOS {
        if only.is_some_and(|o| o != scenario) {
            continue;
        }
        let apim = scenario == "apim";
        let key_line = if apim {
            format!("{KEY_HEADER}: {}\r\n", key(SUBSCRIPTIONS / 2))
        } else {
            String::new()
        };
        let request = format!(
            "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\nAccept: */*\r\n{key_line}\r\n"
        );
        let catalog = apim.then(|| catalog(SUBSCRIPTIONS));
        let edgegw_at = |label: &str, bin: &Path| {
            per_request(dir, label, &request, |wrapper, port| {
                start_edgegw_with(
                    dir,
                    label,
                    port,
                    backend_port,
                    catalog.as_deref(),
                    wrapper,
                    bin,
                )
            })
        };
        let edgegw = edgegw_at(&format!("{scenario}-edgegw"), &o.edgegw)?;
        let mut line = format!("{scenario}: edgegw {}", thousands(edgegw));
        if let Some(baseline) = &o.baseline {
            let base = edgegw_at(&format!("{scenario}-baseline"), baseline)?;
            let _ = write!(
                line,
                "  baseline {} (ratio {:.4}x, {:+.2}%)",
                thousands(base),
                edgegw / base,
                (edgegw / base - 1.0) * 100.0
            );
        }
        for peer in Peer::ALL.into_iter().filter(|_| o.nginx) {
            let label = format!("{scenario}-{}", peer.label());
            let nginx = per_request(dir, &label, &request, |wrapper, port| {
                let http = if apim {
                    nginx_apim(SUBSCRIPTIONS, port, backend_port, peer)
                } else {
                    nginx_proxy(backend_port, &format!("listen 127.0.0.1:{port};"), peer)
                };
                nginx_with(dir, &label, NGINX_SINGLE, &http, wrapper)
            })?;
            let _ = write!(
                line,
                "  {} {} (ratio {:.2}x)",
                peer.label(),
                thousands(nginx),
                edgegw / nginx
            );
        }
        if o.nginx {
            let label = format!("{scenario}-haproxy");
            let haproxy = per_request(dir, &label, &request, |wrapper, port| {
                let cfg = if apim {
                    super::haproxy::apim_config(dir, SUBSCRIPTIONS, port, backend_port)?
                } else {
                    super::haproxy::proxy_config(backend_port, port, None)
                };
                super::haproxy::start(dir, &label, &cfg, wrapper)
            })?;
            let _ = write!(
                line,
                "  haproxy {} (ratio {:.2}x)",
                thousands(haproxy),
                edgegw / haproxy
            );
        }
        println!("{line}");
    }
    if only != Some("http") {
        println!(
            "note: valgrind emulates a CPU without SHA extensions, so the subscription key's SHA-256 costs edgegw about 3.5k more instructions per request here than on a CPU with SHA-NI"
        );
    }
    Ok(())
}

/// Instructions per request of the proxy that `start` runs under the given
/// wrapper (valgrind and its options) on the given port: the totals of a
/// run of `MANY` requests and of one of `FEW`, their difference per request.
fn per_request(
    dir: &Path,
    label: &str,
    request: &str,
    start: impl Fn(&[String], u16) -> anyhow::Result<Proc>,
) -> anyhow::Result<f64> {
    let mut totals = [0u64; 2];
    for (total, n) in totals.iter_mut().zip([FEW, MANY]) {
        let out = format!("{label}-{n}.callgrind");
        let log = dir.join(format!("{label}-{n}.valgrind.log"));
        let wrapper = [
            "valgrind".to_string(),
            "--tool=callgrind".to_string(),
            format!("--callgrind-out-file={}", dir.join(&out).display()),
            "--dump-instr=no".to_string(),
            format!("--log-file={}", log.display()),
        ];
        let port = free_port()?;
        let mut proc = start(&wrapper, port)?;
        wait_port(port).with_context(|| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{label} under callgrind did not start; valgrind said:\n{log}")
        })?;
        serve(port, request, n)
            .with_context(|| format!("{label} under callgrind, {n} requests"))?;
        if !proc.stop(Duration::from_secs(60)) {
            bail!("{label} under callgrind did not stop within 60 s of SIGTERM");
        }
        *total = callgrind_total(dir, &out)?;
    }
    let [few, many] = totals;
    if many <= few {
        bail!("{label}: {MANY} requests counted {many} instructions, no more than {FEW} ({few})");
    }
    Ok((many - few) as f64 / (MANY - FEW) as f64)
}

/// Sends `request` `n` times, one after the other on one connection,
/// reading each response whole and checking it is a 200; then closes the
/// connection and waits for the proxy to close its side, so that both runs
/// end in the same state.
pub(crate) fn serve(port: u16, request: &str, n: usize) -> anyhow::Result<()> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut body = Vec::new();
    for i in 1..=n {
        writer.write_all(request.as_bytes())?;
        line.clear();
        reader.read_line(&mut line)?;
        if !line.starts_with("HTTP/1.1 200 ") {
            bail!(
                "response {i} of {n}: expected HTTP/1.1 200, got {:?}",
                line.trim_end()
            );
        }
        let mut length = None;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                bail!("response {i} of {n}: the connection closed in the header");
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let length = length.with_context(|| format!("response {i} of {n}: no Content-Length"))?;
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    writer.shutdown(Shutdown::Write)?;
    let mut rest = Vec::new();
    reader
        .read_to_end(&mut rest)
        .context("waiting for the proxy to close the connection")?;
    Ok(())
}

/// The instructions counted in every callgrind output file whose name
/// starts with `out` (one a process, or a thread or part).
fn callgrind_total(dir: &Path, out: &str) -> anyhow::Result<u64> {
    let mut total = 0;
    let mut files = 0;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(out))
        {
            continue;
        }
        files += 1;
        let file = BufReader::new(std::fs::File::open(&path)?);
        let mut found = None;
        for line in file.lines() {
            let line = line?;
            if let Some(rest) = line
                .strip_prefix("summary:")
                .or_else(|| line.strip_prefix("totals:"))
            {
                found = rest
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok());
                break;
            }
        }
        total += found.with_context(|| format!("{}: no summary or totals line", path.display()))?;
    }
    if files == 0 {
        bail!("callgrind wrote no {out}* in {}", dir.display());
    }
    Ok(total)
}

/// 27284.4 as "27,284".
fn thousands(value: f64) -> String {
    let digits = format!("{value:.0}");
    let mut text = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            text.push(',');
        }
        text.push(c);
    }
    text
}
