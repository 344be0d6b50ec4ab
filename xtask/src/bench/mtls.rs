//! `cargo xtask bench mtls [--duration SECS] [--connections N] [--rounds N]`:
//! TLS with client certificates. edgegw (`client_certificates =
//! "require"`) against nginx (`ssl_verify_client on`), both forwarding to
//! the same nginx backend, same run, alternating rounds, driven by
//! ApacheBench (`ab -E`: wrk cannot present a client certificate): keep-alive
//! connections (the handshake amortised) and a new connection per request
//! (each one a full handshake with the client's certificate verified).
//! Prints requests/s, p50/p99, CPU per request and edgegw/nginx ratios
//! (target >= 1.0x requests/s).

use std::{
    path::Path,
    process::{Command, Stdio},
};

use anyhow::{Context, bail};

use super::proxy::{Measure, Peer, Proc, backend, free_port, nginx, nginx_proxy, wait_port};
use crate::setup;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (duration, connections, rounds) = super::load_options(args, 5)?;
    setup::ensure_packages_without_services(&["apache2-utils"])?;
    super::in_scratch_dir("mtls", |dir| measure(dir, duration, connections, rounds))
}

/// `openssl` with `args`, quietly.
fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    setup::run(
        Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// A CA, the server's certificate for localhost and a client certificate
/// (`client.pem`: certificate and key, as `ab -E` takes them), P-256.
fn pki(dir: &Path) -> anyhow::Result<()> {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "1", "-subj", "/CN=bench CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &ca)?;
    for (name, ext) in [
        (
            "server",
            "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext)?;
        let subj = format!("/CN={name}");
        let mut req = vec!["req", "-new", "-subj", &subj];
        req.extend(ec);
        let (key, csr, crt, extfile) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        req.extend(["-keyout", &key, "-out", &csr]);
        openssl(dir, &req)?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                &extfile,
                "-out",
                &crt,
            ],
        )?;
    }
    let client = [
        std::fs::read(dir.join("client.crt"))?,
        std::fs::read(dir.join("client.key"))?,
    ]
    .concat();
    std::fs::write(dir.join("client.pem"), client)?;
    Ok(())
}

fn start_edgegw(dir: &Path, port: u16, backend_port: u16) -> anyhow::Result<Proc> {
    let d = dir.display();
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:{}\"\naccess_log = \"off\"\n[xdp]\nmode = \"off\"\n\
         [tls]\nlisten = \"127.0.0.1:{port}\"\n[[tls.certificates]]\ncert = \"{d}/server.crt\"\nkey = \"{d}/server.key\"\n\
         client_certificates = \"require\"\nclient_ca_file = \"{d}/ca.pem\"\n\
         [[apis]]\nname = \"bench\"\npath = \"/\"\nbackend = \"http://127.0.0.1:{backend_port}\"\n",
        free_port()?
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

/// ApacheBench for `secs` with `connections`, presenting the client
/// certificate; `keep_alive` reuses connections.
fn ab(
    dir: &Path,
    url: &str,
    connections: u64,
    secs: u64,
    keep_alive: bool,
) -> anyhow::Result<Measure> {
    let mut cmd = Command::new("ab");
    cmd.args([
        "-q",
        "-n",
        "100000000",
        "-t",
        &secs.to_string(),
        "-c",
        &connections.to_string(),
    ])
    .arg("-E")
    .arg(dir.join("client.pem"));
    if keep_alive {
        cmd.arg("-k");
    }
    // ab resolves names itself (maybe to ::1): the address, no SNI needed.
    let out = cmd
        .arg(url.replace("localhost", "127.0.0.1"))
        .output()
        .context("running ab")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "ab {url} failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let field = |prefix: &str| -> Option<&str> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    let number = |prefix: &str| -> anyhow::Result<f64> {
        field(prefix)
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no {prefix} in ab output:\n{text}"))
    };
    let requests = number("Complete requests:")? as u64;
    let errors = number("Failed requests:")? as u64
        + field("Non-2xx responses:")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    if requests == 0 {
        bail!("ab {url}: no request completed:\n{text}");
    }
    Ok(Measure {
        rps: number("Requests per second:")?,
        p50_ms: number("50%")?,
        p99_ms: number("99%")?,
        errors,
        requests,
        cpu_us: 0.0,
    })
}

fn measure(dir: &Path, duration: u64, connections: u64, rounds: u64) -> anyhow::Result<()> {
    pki(dir)?;
    let (backend_port, _backend) = backend(dir)?;
    let (edgegw_port, nginx_port) = (free_port()?, free_port()?);
    let edgegw = start_edgegw(dir, edgegw_port, backend_port)?;
    let d = dir.display();
    let head = format!(
        "listen 127.0.0.1:{nginx_port} ssl; ssl_certificate {d}/server.crt; ssl_certificate_key {d}/server.key;\n\
         ssl_client_certificate {d}/ca.pem; ssl_verify_client on; ssl_session_cache off; ssl_session_tickets off;"
    );
    let nginx = nginx(dir, "nginx", &nginx_proxy(backend_port, &head, Peer::Lean))?;
    wait_port(edgegw_port)?;
    wait_port(nginx_port)?;
    let peers = [
        (
            "edgegw",
            format!("https://localhost:{edgegw_port}/"),
            &edgegw,
        ),
        ("nginx", format!("https://localhost:{nginx_port}/"), &nginx),
    ];
    // Both answer with a certificate, and refuse without one.
    for (name, url, _) in &peers {
        let ok = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(dir.join("ca.pem"))
            .arg("--cert")
            .arg(dir.join("client.pem"))
            .arg(url)
            .output()?;
        if ok.stdout != b"200" {
            bail!(
                "{name}: {url} answered {:?} with a client certificate",
                String::from_utf8_lossy(&ok.stdout)
            );
        }
        let refused = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(dir.join("ca.pem"))
            .arg(url)
            .output()?;
        if refused.stdout == b"200" {
            bail!("{name}: {url} answered 200 without a client certificate");
        }
    }
    println!(
        "bench mtls: ab -E (client certificate), {connections} connections, {duration} s per run, median of {rounds} alternating rounds; nginx backend"
    );
    for (label, keep_alive) in [("keep-alive", true), ("handshake per request", false)] {
        let names: Vec<String> = peers
            .iter()
            .map(|(n, _, _)| format!("{n} {label}"))
            .collect();
        let contenders: Vec<(&str, u32)> = names
            .iter()
            .zip(&peers)
            .map(|(n, (_, _, p))| (n.as_str(), p.0.id()))
            .collect();
        let medians = super::alternating_rounds("", &contenders, duration, rounds, |i, secs| {
            ab(dir, &peers[i].1, connections, secs, keep_alive)
        })?;
        let (e, n) = (&medians[0], &medians[1]);
        println!(
            "ratio edgegw/nginx, {label}: requests/s {:.3}x (target >= 1.0x), CPU per request {:.3}x, p99 {:.2}x",
            e.rps / n.rps,
            e.cpu_us / n.cpu_us,
            e.p99_ms / n.p99_ms
        );
    }
    Ok(())
}
