//! Profile-guided optimisation of the shipped edgegw. Before each
//! production build, an instrumented edgegw (built apart, in
//! `target/pgo/build`) serves a training load; LLVM then lays out and
//! inlines the production build by the counts it recorded. The request path
//! is a long chain of small functions across tokio, hyper, http and our
//! code: with the profile its hot code is packed together and the rest moved
//! out of the way, which cut the instructions per API-management request
//! by 13% and simulated instruction-cache misses by a third (callgrind), and
//! CPU per request by 17% under wrk.
//!
//! The training load is what a gateway mostly serves: HTTP/1.1 keep-alive
//! requests through a plain API and through a managed one (subscription
//! key, `rate-limit-by-key`, `set-header`; its catalog holds 20,000
//! subscriptions, so that loading one is trained too), and with curl TLS
//! 1.3 and HTTP/2 (over TLS and cleartext). Code it does not reach (JWT, other policies,
//! error paths) is optimised for size, as LLVM does for code a profile
//! shows cold.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use crate::{
    build::{PROFILE, cargo, ebpf_object},
    root, setup,
};

/// Requests each keep-alive client sends per API.
const REQUESTS: usize = 5000;
/// Keep-alive clients per API, at the same time.
const CLIENTS: usize = 4;
/// Requests curl sends on one connection, over TLS with HTTP/1.1 and with
/// HTTP/2.
const CURL_REQUESTS: usize = 200;
/// Cleartext HTTP/2 (prior knowledge) requests, a connection each.
const H2C_REQUESTS: usize = 20;
/// Subscriptions in the training catalog: enough that loading a catalog
/// counts as hot code too (with 100, loading 100,000 took 40% longer than
/// without the profile).
const SUBSCRIPTIONS: usize = 20_000;

fn dir() -> PathBuf {
    root().join("target/pgo")
}

/// Builds the instrumented edgegw, runs the training load through it and
/// merges what it recorded; returns the profile for `-Cprofile-use`.
pub fn profile() -> anyhow::Result<PathBuf> {
    let dir = dir();
    let raw = dir.join("raw");
    setup::run(
        cargo()
            .current_dir(root())
            // The shipped build's profile: counts are keyed by function and
            // codegen unit, so a build partitioned differently would not match.
            .args(["build", "--profile", PROFILE, "-p", "gateway-user"])
            .arg("--target-dir")
            .arg(dir.join("build"))
            .env("EDGEGW_EBPF_OBJECT", ebpf_object())
            .env(
                "CARGO_ENCODED_RUSTFLAGS",
                format!("-Cprofile-generate={}", raw.display()),
            ),
    )
    .context("building the instrumented edgegw for profile-guided optimisation")?;
    // Build scripts of the instrumented build write counts here too.
    let _ = std::fs::remove_dir_all(&raw);
    std::fs::create_dir_all(&raw)?;
    let work = dir.join("train");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    train(&dir.join("build").join(PROFILE).join("edgegw"), &work)
        .context("training the instrumented edgegw")?;
    let profiles: Vec<PathBuf> = std::fs::read_dir(&raw)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "profraw"))
        .collect();
    if profiles.is_empty() {
        bail!(
            "the instrumented edgegw wrote no profile into {}",
            raw.display()
        );
    }
    let merged = dir.join("edgegw.profdata");
    setup::run(
        Command::new(setup::llvm_profdata()?)
            .arg("merge")
            .arg("-o")
            .arg(&merged)
            .args(&profiles),
    )
    .context("merging the training profiles")?;
    Ok(merged)
}

/// Runs the training load through `edgegw`: a plain gateway (HTTP/1.1,
/// TLS, HTTP/2), then an API-management one.
fn train(edgegw: &Path, work: &Path) -> anyhow::Result<()> {
    let backend = Backend::start()?;
    let (cert, key) = (work.join("cert.pem"), work.join("key.pem"));
    setup::run(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null()),
    )?;

    let (port, tls_port) = (free_port()?, free_port()?);
    let config = format!(
        "{}[tls]\nlisten = \"127.0.0.1:{tls_port}\"\n[[tls.certificates]]\ncert = \"{}\"\nkey = \"{}\"\n",
        gateway(port, backend.port),
        cert.display(),
        key.display()
    );
    let gw = Gateway::start(edgegw, work, "plain", &config, port)?;
    keep_alive(port, "")?;
    let https = format!("https://127.0.0.1:{tls_port}/b");
    curl(work, &["-k", "--http1.1"], &https, CURL_REQUESTS)?;
    curl(work, &["-k", "--http2"], &https, CURL_REQUESTS)?;
    // A connection each: curl 7.88 fails the second request on a reused
    // prior-knowledge HTTP/2 connection (to nginx alike).
    for _ in 0..H2C_REQUESTS {
        curl(
            work,
            &["--http2-prior-knowledge"],
            &format!("http://127.0.0.1:{port}/b"),
            1,
        )?;
    }
    gw.stop()?;

    let port = free_port()?;
    let catalog = work.join("catalog.yaml");
    std::fs::write(&catalog, training_catalog())?;
    let config = format!(
        "{}[catalog]\nfile = \"{}\"\n",
        gateway(port, backend.port),
        catalog.display()
    );
    let gw = Gateway::start(edgegw, work, "apim", &config, port)?;
    keep_alive(
        port,
        &format!(
            "Ocp-Apim-Subscription-Key: {}\r\n",
            key_of(SUBSCRIPTIONS / 2)
        ),
    )?;
    gw.stop()
}

fn gateway(port: u16, backend: u16) -> String {
    format!(
        "[gateway]\nlisten = \"127.0.0.1:{port}\"\naccess_log = \"off\"\n[xdp]\nmode = \"off\"\n\
         [[apis]]\nname = \"train\"\npath = \"/\"\nbackend = \"http://127.0.0.1:{backend}\"\n"
    )
}

fn key_of(i: usize) -> String {
    format!("train-key-{i:05}")
}

fn training_catalog() -> String {
    let mut text = String::from(
        "apis:\n  - name: train\n    policies:\n      inbound:\n\
         \x20       - rate-limit-by-key: {calls: 1000000000, renewal_period: 60, counter_key: \"{subscription_id}\"}\n\
         \x20       - set-header: {name: X-Gateway, value: edgegw}\n\
         \x20     outbound:\n        - set-header: {name: X-Served-By, value: edgegw}\nsubscriptions:\n",
    );
    for i in 0..SUBSCRIPTIONS {
        let hash: String = Sha256::digest(key_of(i).as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        text.push_str(&format!(
            "  - {{id: s{i}, scope: \"api:train\", primary_key_sha256: {hash}}}\n"
        ));
    }
    text
}

/// `CLIENTS` keep-alive clients at once, each sending `REQUESTS` requests
/// (with the extra header lines `extra`) and reading each 200 whole.
fn keep_alive(port: u16, extra: &str) -> anyhow::Result<()> {
    let request = format!(
        "GET /b HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: train\r\nAccept: */*\r\n{extra}\r\n"
    );
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let request = request.clone();
            thread::spawn(move || client(port, &request))
        })
        .collect();
    for c in clients {
        c.join()
            .map_err(|_| anyhow::anyhow!("a training client panicked"))??;
    }
    Ok(())
}

fn client(port: u16, request: &str) -> anyhow::Result<()> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let (mut line, mut body) = (String::new(), Vec::new());
    for i in 0..REQUESTS {
        writer.write_all(request.as_bytes())?;
        line.clear();
        reader.read_line(&mut line)?;
        if !line.starts_with("HTTP/1.1 200 ") {
            bail!(
                "training request {i}: expected a 200, got {:?}",
                line.trim_end()
            );
        }
        let mut length = 0;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                bail!("training request {i}: the connection closed in the header");
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    writer.shutdown(Shutdown::Write)?;
    Ok(())
}

/// `requests` requests to `url` on one curl connection, with `options`.
fn curl(work: &Path, options: &[&str], url: &str, requests: usize) -> anyhow::Result<()> {
    let list = work.join("curl.conf");
    std::fs::write(
        &list,
        format!("url = \"{url}\"\noutput = \"/dev/null\"\n").repeat(requests),
    )?;
    let out = Command::new("curl")
        .args(["-s", "--fail", "-w", "%{http_code}\\n"])
        .args(options)
        .arg("-K")
        .arg(&list)
        .output()
        .context("running curl")?;
    let ok = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| *l == "200")
        .count();
    if !out.status.success() || ok != requests {
        bail!(
            "curl {options:?} {url}: {ok} of {requests} requests answered 200: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A backend answering every request with 23 bytes, one thread per
/// connection; its threads end with the training process.
struct Backend {
    port: u16,
}

impl Backend {
    fn start() -> anyhow::Result<Backend> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || answer(stream));
            }
        });
        Ok(Backend { port })
    }
}

/// Answers each request head on `stream` (requests have no body here).
fn answer(stream: TcpStream) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => {
                let answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 23\r\n\r\nhello from the backend\n";
                if writer.write_all(answer).is_err() {
                    return;
                }
            }
            Ok(_) => {}
        }
    }
}

/// The instrumented edgegw, running; `stop` ends it the way that writes its
/// profile (SIGTERM, then a normal exit).
struct Gateway(Child);

impl Gateway {
    fn start(
        edgegw: &Path,
        work: &Path,
        name: &str,
        config: &str,
        port: u16,
    ) -> anyhow::Result<Gateway> {
        let path = work.join(format!("{name}.toml"));
        std::fs::write(&path, config)?;
        let child = Command::new(edgegw)
            .args(["run", "--config"])
            .arg(&path)
            .arg("--runtime-dir")
            .arg(work.join(format!("{name}.run")))
            .env("EDGEGW_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("starting the instrumented edgegw")?;
        let gw = Gateway(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("the instrumented edgegw does not listen on 127.0.0.1:{port} after 30 s");
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(gw)
    }

    fn stop(mut self) -> anyhow::Result<()> {
        setup::run(Command::new("kill").args(["-TERM", &self.0.id().to_string()]))?;
        let status = self.0.wait()?;
        if !status.success() {
            bail!("the instrumented edgegw exited with {status} after SIGTERM");
        }
        Ok(())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // On an error path only: `stop` has reaped it otherwise.
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
