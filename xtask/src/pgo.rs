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
//! key, `rate-limit-by-key`, `set-header`: the catalog of `bench apim`,
//! with 20,000 subscriptions so that loading one is trained too), and with
//! curl TLS 1.3 and HTTP/2 (over TLS and cleartext), and `validate-jwt`
//! with an RS256 key on every request. Code it does not reach (the other
//! policies, error paths) is what the profile shows cold:
//! LLVM places it apart and optimises it for size.

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
};

use anyhow::{Context, bail};

use crate::{
    bench::{
        apim::{self, KEY_HEADER},
        instructions::serve,
        jwt,
        proxy::{free_port, self_signed, wait_port},
    },
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
    let instrumented = dir.join("build").join(PROFILE).join("edgegw");
    let merged = dir.join("edgegw.profdata");
    // rustc makes every crate depend on the profile file: a new profile of
    // unchanged code would rebuild them all for nothing.
    if newer(&merged, &instrumented) {
        return Ok(merged);
    }
    // Build scripts of the instrumented build write counts here too.
    let _ = std::fs::remove_dir_all(&raw);
    std::fs::create_dir_all(&raw)?;
    let work = dir.join("train");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    train(&instrumented, &work).context("training the instrumented edgegw")?;
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

/// Whether `a` exists and was written after `b`.
fn newer(a: &Path, b: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((modified(a), modified(b)), (Some(a), Some(b)) if a > b)
}

/// Runs the training load through `edgegw`: a plain gateway (HTTP/1.1,
/// TLS, HTTP/2), then an API-management one.
fn train(edgegw: &Path, work: &Path) -> anyhow::Result<()> {
    let backend = Backend::start()?;
    let (cert, key) = self_signed(work)?;

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
    std::fs::write(&catalog, apim::catalog(SUBSCRIPTIONS))?;
    let config = format!(
        "{}[catalog]\nfile = \"{}\"\n",
        gateway(port, backend.port),
        catalog.display()
    );
    let gw = Gateway::start(edgegw, work, "apim", &config, port)?;
    keep_alive(
        port,
        &format!("{KEY_HEADER}: {}\r\n", apim::key(SUBSCRIPTIONS / 2)),
    )?;
    gw.stop()?;

    // validate-jwt with an RS256 key, as `bench proxy --only jwt` loads it.
    let port = free_port()?;
    let (private, public) = jwt::key_pair(work)?;
    let token = jwt::token(work, &private)?;
    let catalog = work.join("jwt.yaml");
    std::fs::write(&catalog, jwt::catalog(&public)?)?;
    let config = format!(
        "{}[catalog]\nfile = \"{}\"\n",
        gateway(port, backend.port),
        catalog.display()
    );
    let gw = Gateway::start(edgegw, work, "jwt", &config, port)?;
    keep_alive(port, &format!("Authorization: Bearer {token}\r\n"))?;
    gw.stop()
}

fn gateway(port: u16, backend: u16) -> String {
    format!(
        "[gateway]\nlisten = \"127.0.0.1:{port}\"\naccess_log = \"off\"\n[xdp]\nmode = \"off\"\n\
         [[apis]]\nname = \"bench\"\npath = \"/\"\nbackend = \"http://127.0.0.1:{backend}\"\n"
    )
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
            thread::spawn(move || serve(port, &request, REQUESTS))
        })
        .collect();
    for c in clients {
        c.join()
            .map_err(|_| anyhow::anyhow!("a training client panicked"))??;
    }
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
        wait_port(port).context("the instrumented edgegw did not start")?;
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
