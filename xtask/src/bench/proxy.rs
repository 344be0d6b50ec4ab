//! `cargo xtask bench proxy [--duration SECS] [--connections N] [--rounds N]
//! [--subscriptions N] [--only http|tls|apim|jwt]`: wrk against edgegw,
//! against Debian's nginx configured as the equivalent reverse proxy (and
//! as the leaner one of earlier runs, for reference: see `Peer`) and
//! against Debian's HAProxy (see `haproxy`), to
//! the same backend, in the same run, with the same connection count;
//! scenarios HTTP/1.1 keep-alive, TLS, and "apim" (key check, rate limit,
//! set-header: see `apim`), "jwt" (RS256 validation: see `jwt`), then the memory and load time of a catalog of
//! N subscriptions. Prints requests/s, p50, p99 and the CPU time each proxy
//! spent per request (all threads and worker processes: the efficiency
//! measure that holds when other load on the machine skews the CPU shares)
//! for both, and the ratios. The two proxies are
//! measured alternately for several rounds and the median round of each is
//! reported, so that load from elsewhere on the machine hits both alike.
//!
//! Everything runs on ephemeral loopback ports, from a temporary directory,
//! and is stopped by pid. The backend is a separate nginx instance that
//! answers a fixed small body, so both proxies do exactly the same work.

use std::{
    ffi::OsStr,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::{build::edgegw_bin, setup};

/// A child process stopped (by pid) and reaped on drop: SIGTERM first, so
/// that an nginx master stops its workers (SIGKILL would orphan them),
/// then SIGKILL after 5 s.
pub(super) struct Proc(pub(super) Child);

impl Proc {
    /// SIGTERM, repeated every second, for up to `grace` before SIGKILL;
    /// true if it exited by itself (or had already been reaped). Repeated
    /// because a process that checks a flag its handler sets before it
    /// blocks (nginx with `master_process off`) misses a signal that
    /// arrives between the check and the block.
    pub(super) fn stop(&mut self, grace: Duration) -> bool {
        let start = Instant::now();
        let mut next_signal = start;
        while start.elapsed() < grace {
            if let Ok(Some(_)) = self.0.try_wait() {
                return true;
            }
            if Instant::now() >= next_signal {
                let _ = Command::new("kill")
                    .args(["-TERM", &self.0.id().to_string()])
                    .status();
                next_signal += Duration::from_secs(1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// One wrk result.
pub(super) struct Measure {
    pub(super) rps: f64,
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) errors: u64,
    /// Requests completed.
    pub(super) requests: u64,
    /// CPU time the proxy (all its threads and worker processes) spent per
    /// request: its efficiency, whatever share of the CPUs it got.
    pub(super) cpu_us: f64,
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut duration = 10u64;
    let mut connections = 64u64;
    let mut rounds = 3u64;
    let mut subscriptions = 100_000u64;
    let mut only = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let text = it.next().with_context(|| format!("{a} needs a value"))?;
        if a == "--only" {
            if !SCENARIOS.contains(&text.as_str()) {
                bail!("--only {text}: unknown scenario; use one of {SCENARIOS:?}");
            }
            only = Some(text.clone());
            continue;
        }
        let value = text
            .parse()
            .with_context(|| format!("{a} needs a number"))?;
        match a.as_str() {
            "--duration" => duration = value,
            "--connections" => connections = value,
            "--rounds" => rounds = value.max(1),
            "--subscriptions" => subscriptions = value.max(1),
            other => bail!(
                "unknown option {other}; use --duration SECS, --connections N, --rounds N, --subscriptions N or --only SCENARIO"
            ),
        }
    }
    install_tools()?;
    let dir = std::env::temp_dir().join(format!("edgegw-bench-proxy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let run = Run {
        duration,
        connections,
        rounds,
        only,
    };
    // The flood scenario has proxies of its own, in namespaces.
    let result = if run.only.as_deref() == Some("flood") {
        Ok(())
    } else {
        measure_all(&dir, &run)
    }
    .and_then(|()| {
        if run.wants("apim") {
            super::apim::catalog_cost(&dir, subscriptions as usize)
        } else {
            Ok(())
        }
    })
    .and_then(|()| {
        if run.wants("flood") {
            super::flood::run(duration.max(1), connections.max(1), rounds)
        } else {
            Ok(())
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// nginx-light, haproxy, wrk, h2load (nghttp2-client) and openssl; the Debian packages must not
/// start a system nginx on port 80 (or a system HAProxy), so service starts
/// are refused while installing.
pub(crate) fn install_tools() -> anyhow::Result<()> {
    setup::ensure_packages_without_services(&[
        "nginx-light",
        "haproxy",
        "wrk",
        "nghttp2-client",
        "openssl",
    ])
}

/// A self-signed P-256 certificate for localhost and its key, written into
/// `dir` as cert.pem and key.pem (openssl).
pub(crate) fn self_signed(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    self_signed_key(dir, "", &["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
}

/// The same with an RSA 2048 key, as rsa-cert.pem and rsa-key.pem.
fn self_signed_rsa(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    self_signed_key(dir, "rsa-", &["rsa:2048"])
}

/// A self-signed certificate for localhost with a new key of `newkey`
/// (openssl's `-newkey` and its options), as PREFIXcert.pem and
/// PREFIXkey.pem.
fn self_signed_key(
    dir: &Path,
    prefix: &str,
    newkey: &[&str],
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (cert, key) = (
        dir.join(format!("{prefix}cert.pem")),
        dir.join(format!("{prefix}key.pem")),
    );
    setup::run(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey"])
            .args(newkey)
            .args(["-nodes", "-days", "1"])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null()),
    )?;
    Ok((cert, key))
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) fn wait_port(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            bail!("nothing listens on 127.0.0.1:{port} after 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The backend both proxies forward to: an nginx answering 23 bytes, on a
/// free port; it stops when the returned process drops.
pub(super) fn backend(dir: &Path) -> anyhow::Result<(u16, Proc)> {
    let port = free_port()?;
    let proc = nginx(dir, "backend", &backend_http(port))?;
    wait_port(port)?;
    Ok((port, proc))
}

/// The backend's `http` body: 23 bytes on 127.0.0.1:`port`.
pub(super) fn backend_http(port: u16) -> String {
    format!(
        "  server {{ listen 127.0.0.1:{port} reuseport backlog=4096; keepalive_requests 100000;\n    location / {{ return 200 \"hello from the backend\\n\"; }} }}"
    )
}

pub(super) fn nginx(dir: &Path, name: &str, http: &str) -> anyhow::Result<Proc> {
    nginx_with(dir, name, "worker_processes auto;", http, &[])
}

/// nginx (in the foreground, prefix `dir/name`) with the top-level process
/// directives `processes` and the `http` block's body, started by
/// `wrapper` (a program and its options, such as valgrind's) when it is
/// not empty.
pub(super) fn nginx_with(
    dir: &Path,
    name: &str,
    processes: &str,
    http: &str,
    wrapper: &[String],
) -> anyhow::Result<Proc> {
    let prefix = dir.join(name);
    std::fs::create_dir_all(&prefix)?;
    let p = prefix.display();
    let conf = prefix.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "user root;\n{processes}\npcre_jit on;\ndaemon off;\npid {p}/nginx.pid;\nerror_log {p}/error.log warn;\n\
             events {{ worker_connections 8192; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {p}/body;\n  proxy_temp_path {p}/proxy;\n\
             {http}\n}}\n"
        ),
    )?;
    let child = wrapped(wrapper, "nginx")
        .arg("-p")
        .arg(&prefix)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nginx")?;
    Ok(Proc(child))
}

/// `program`, or `program` run by `wrapper` (a program and its options)
/// when that is not empty.
pub(super) fn wrapped(wrapper: &[String], program: impl AsRef<OsStr>) -> Command {
    match wrapper {
        [] => Command::new(program),
        [first, options @ ..] => {
            let mut cmd = Command::new(first);
            cmd.args(options).arg(program);
            cmd
        }
    }
}

/// Which nginx edgegw is compared with. edgegw writes, on every request,
/// more than a plain nginx reverse proxy does: `X-Forwarded-Host`,
/// `Forwarded` and a new W3C `traceparent` to the backend, that trace's id
/// as `X-Request-Id` to the client, and for API management the IETF
/// `RateLimit` headers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Peer {
    /// nginx writing the same headers (the same job, byte for byte in
    /// size): what the targets are measured against.
    Same,
    /// nginx writing only `X-Forwarded-For` and `X-Forwarded-Proto` (and
    /// none of the above): the comparison of earlier runs, kept as a
    /// reference.
    Lean,
}

impl Peer {
    pub(super) const ALL: [Peer; 2] = [Peer::Same, Peer::Lean];

    pub(super) fn label(self) -> &'static str {
        match self {
            Peer::Same => "nginx",
            Peer::Lean => "nginx-lean",
        }
    }

    /// `http`-level directives the location's headers need.
    pub(super) fn maps(self) -> &'static str {
        match self {
            // `Forwarded` extends the client's, as edgegw's does; the span
            // id is taken from nginx's random request id.
            Peer::Same => concat!(
                "  map $http_forwarded $edgegw_forwarded {\n",
                "    \"\" \"for=$remote_addr;proto=$scheme;host=\\\"$host\\\"\";\n",
                "    default \"$http_forwarded, for=$remote_addr;proto=$scheme;host=\\\"$host\\\"\"; }\n",
                "  map $request_id $edgegw_span { \"~^(?<s>.{16})\" $s; }\n",
            ),
            Peer::Lean => "",
        }
    }

    /// `location`-level directives: the proxy headers edgegw writes.
    pub(super) fn headers(self) -> &'static str {
        match self {
            Peer::Same => concat!(
                "proxy_set_header X-Forwarded-Host $host; proxy_set_header Forwarded $edgegw_forwarded;\n",
                "proxy_set_header traceparent \"00-$request_id-$edgegw_span-01\";\n",
                "add_header X-Request-Id $request_id;\n",
            ),
            Peer::Lean => "",
        }
    }
}

/// The `http` body of nginx as the plain reverse proxy to the backend on
/// `backend_port`: `server_head` holds the server's `listen` (and TLS)
/// directives.
pub(super) fn nginx_proxy(backend_port: u16, server_head: &str, peer: Peer) -> String {
    format!(
        "{maps}  upstream backend {{ server 127.0.0.1:{backend_port}; keepalive 128; keepalive_requests 100000; }}\n\
         server {{ {server_head}\n\
           keepalive_requests 100000;\n\
           location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\";\n\
             proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto $scheme;\n\
             {headers} }} }}",
        maps = peer.maps(),
        headers = peer.headers(),
    )
}

const SCENARIOS: [&str; 7] = ["http", "tls", "handshake", "h2", "apim", "jwt", "flood"];

struct Run {
    duration: u64,
    connections: u64,
    rounds: u64,
    only: Option<String>,
}

impl Run {
    fn wants(&self, scenario: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == scenario)
    }
}

fn measure_all(dir: &Path, run: &Run) -> anyhow::Result<()> {
    let Run {
        duration,
        connections,
        rounds,
        ..
    } = *run;
    let (cert, key) = self_signed(dir)?;
    let (backend_port, _backend) = backend(dir)?;
    let Proxies {
        peers,
        haproxy: (haproxy, hp, ht),
        edgegw: (edgegw_proc, ep, et),
    } = start_proxies(dir, "", backend_port, &Peer::ALL, &cert, &key)?;
    // The same three again with an RSA 2048 certificate, for handshakes.
    let rsa = if run.wants("handshake") {
        let (cert, key) = self_signed_rsa(dir)?;
        Some(start_proxies(
            dir,
            "rsa-",
            backend_port,
            &[Peer::Same],
            &cert,
            &key,
        )?)
    } else {
        None
    };
    // A gRPC-shaped message for the h2 POST: a 5-byte frame header (not
    // compressed, length 16) and 16 bytes of protobuf fields.
    let grpc_body = dir.join("grpc-body");
    let mut message = vec![0u8, 0, 0, 0, 16];
    message.extend_from_slice(b"\x0a\x0ehello, gateway");
    std::fs::write(&grpc_body, &message)?;
    let apim = if run.wants("apim") {
        Some(super::apim::start(dir, backend_port)?)
    } else {
        None
    };
    let jwt = if run.wants("jwt") {
        Some(super::jwt::start(dir, backend_port)?)
    } else {
        None
    };

    println!(
        "bench proxy: wrk, {connections} connections, {duration} s per run, median of {rounds} alternating rounds, same backend (nginx returning 23 bytes)"
    );
    println!(
        "peers: \"nginx\" writes the same headers as edgegw (X-Forwarded-Host, Forwarded, a new traceparent, X-Request-Id, and for apim the RateLimit headers); \"nginx-lean\" writes only X-Forwarded-For/-Proto (the earlier comparison, for reference)"
    );
    let e_pid = edgegw_proc.0.id();
    let with_scheme = |scheme: &str, pick: fn(&(Peer, u16, u16, Proc)) -> u16, ha: u16| {
        let mut targets: Vec<Target> = peers
            .iter()
            .map(|p| Target {
                label: p.0.label(),
                url: format!("{scheme}://127.0.0.1:{}/b", pick(p)),
                pid: p.3.0.id(),
            })
            .collect();
        targets.push(Target {
            label: "haproxy",
            url: format!("{scheme}://127.0.0.1:{ha}/b"),
            pid: haproxy.0.id(),
        });
        targets
    };
    let edgegw_at = |url: String| Target {
        label: "edgegw",
        url,
        pid: e_pid,
    };
    let mut scenarios = vec![
        Scenario {
            name: "http",
            edgegw: edgegw_at(format!("http://127.0.0.1:{ep}/b")),
            peers: with_scheme("http", |p| p.1, hp),
            header: None,
            load: Load::Wrk,
        },
        Scenario {
            name: "tls",
            edgegw: edgegw_at(format!("https://127.0.0.1:{et}/b")),
            peers: with_scheme("https", |p| p.2, ht),
            header: None,
            load: Load::Wrk,
        },
        // A new TLS 1.3 connection (full handshake, ECDSA P-256) for every
        // request: wrk reconnects after each `Connection: close` and does
        // not resume sessions.
        Scenario {
            name: "handshake",
            edgegw: edgegw_at(format!("https://127.0.0.1:{et}/b")),
            peers: with_scheme("https", |p| p.2, ht),
            header: Some("Connection: close"),
            load: Load::Wrk,
        },
        // The same, resuming the session of the previous connection (TLS
        // 1.3 tickets): `openssl s_time -reuse`.
        Scenario {
            name: "handshake-resumed",
            edgegw: edgegw_at(format!("https://127.0.0.1:{et}/b")),
            peers: with_scheme("https", |p| p.2, ht),
            header: None,
            load: Load::Resumed,
        },
        // HTTP/2 over TLS (ALPN), many streams per connection: h2load.
        Scenario {
            name: "h2",
            edgegw: edgegw_at(format!("https://127.0.0.1:{et}/b")),
            peers: with_scheme("https", |p| p.2, ht),
            header: None,
            load: Load::H2 { body: None },
        },
        // The same with a gRPC-shaped unary call: POST, content-type
        // application/grpc, `te: trailers` and a small framed message.
        Scenario {
            name: "h2-grpc",
            edgegw: edgegw_at(format!("https://127.0.0.1:{et}/bench.Echo/Say")),
            peers: with_scheme("https", |p| p.2, ht)
                .into_iter()
                .map(|t| Target {
                    url: t.url.replace("/b", "/bench.Echo/Say"),
                    ..t
                })
                .collect(),
            header: None,
            load: Load::H2 {
                body: Some(&grpc_body),
            },
        },
    ];
    if let Some(rsa) = &rsa {
        let mut peers: Vec<Target> = rsa
            .peers
            .iter()
            .map(|p| Target {
                label: p.0.label(),
                url: format!("https://127.0.0.1:{}/b", p.2),
                pid: p.3.0.id(),
            })
            .collect();
        peers.push(Target {
            label: "haproxy",
            url: format!("https://127.0.0.1:{}/b", rsa.haproxy.2),
            pid: rsa.haproxy.0.0.id(),
        });
        // After the ECDSA handshakes: the same with RSA 2048.
        scenarios.insert(
            3,
            Scenario {
                name: "handshake-rsa",
                edgegw: Target {
                    label: "edgegw",
                    url: format!("https://127.0.0.1:{}/b", rsa.edgegw.2),
                    pid: rsa.edgegw.0.0.id(),
                },
                peers,
                header: Some("Connection: close"),
                load: Load::Wrk,
            },
        );
    }
    if let Some(a) = &apim {
        scenarios.push(Scenario {
            name: "apim",
            edgegw: a.edgegw.clone(),
            peers: a.peers.clone(),
            header: Some(a.key_header.as_str()),
            load: Load::Wrk,
        });
    }
    if let Some(j) = &jwt {
        println!(
            "jwt: RS256 (RSA 2048) token checked for signature, exp, iss and aud on every request; nginx is not measured (no module of Debian's nginx verifies JWT signatures)"
        );
        scenarios.push(Scenario {
            name: "jwt",
            edgegw: j.edgegw.clone(),
            peers: j.peers.clone(),
            header: Some(j.header.as_str()),
            load: Load::Wrk,
        });
    }
    for scenario in scenarios {
        // `--only handshake` also runs handshake-rsa and -resumed, `--only
        // h2` h2-grpc.
        let family = scenario.name.split('-').next().unwrap_or(scenario.name);
        if run.wants(family) {
            measure(&scenario, connections, duration, rounds)?;
        }
    }
    Ok(())
}

/// A proxy under test: its name in the output, the URL wrk loads, and the
/// process whose CPU time is counted.
#[derive(Clone)]
pub(super) struct Target {
    pub(super) label: &'static str,
    pub(super) url: String,
    pub(super) pid: u32,
}

struct Scenario<'a> {
    name: &'static str,
    edgegw: Target,
    peers: Vec<Target>,
    /// An extra request header ("Name: value").
    header: Option<&'a str>,
    load: Load<'a>,
}

/// The client of a scenario.
enum Load<'a> {
    /// wrk: HTTP/1.1, `--connections` connections.
    Wrk,
    /// h2load: HTTP/2, `H2_STREAMS` streams on each connection; with a
    /// body, gRPC-shaped POSTs of it.
    H2 { body: Option<&'a Path> },
    /// `openssl s_time -reuse`: a new connection per request resuming the
    /// previous session.
    Resumed,
}

/// Clients of the "handshake-resumed" scenario (each one connection at a
/// time).
const RESUME_CLIENTS: u64 = 4;

/// edgegw, the nginx `peers` and HAProxy serving plain and TLS with one
/// certificate: each with its process and ports (plain, TLS).
struct Proxies {
    peers: Vec<(Peer, u16, u16, Proc)>,
    haproxy: (Proc, u16, u16),
    edgegw: (Proc, u16, u16),
}

/// Starts `Proxies` with `cert` and `key` (file names prefixed with
/// `prefix`) in front of the backend.
fn start_proxies(
    dir: &Path,
    prefix: &str,
    backend_port: u16,
    nginx_peers: &[Peer],
    cert: &Path,
    key: &Path,
) -> anyhow::Result<Proxies> {
    // One nginx per peer configuration, each serving plain and TLS.
    let mut peers = Vec::new();
    for &peer in nginx_peers {
        let (np, nt) = (free_port()?, free_port()?);
        let proc = nginx(
            dir,
            &format!("{prefix}proxy-{}", peer.label()),
            &nginx_proxy(
                backend_port,
                &format!(
                    "listen 127.0.0.1:{np} backlog=4096; listen 127.0.0.1:{nt} ssl http2 backlog=4096;\n\
                     ssl_certificate {c}; ssl_certificate_key {k}; ssl_protocols TLSv1.2 TLSv1.3;",
                    c = cert.display(),
                    k = key.display()
                ),
                peer,
            ),
        )?;
        wait_port(np)?;
        wait_port(nt)?;
        peers.push((peer, np, nt, proc));
    }

    let (hp, ht) = (free_port()?, free_port()?);
    let sub = dir.join(format!("{prefix}haproxy"));
    std::fs::create_dir_all(&sub)?;
    let pem = super::haproxy::pem(&sub, cert, key)?;
    let haproxy = super::haproxy::start(
        dir,
        &format!("{prefix}proxy-haproxy"),
        &super::haproxy::proxy_config(backend_port, hp, Some((ht, &pem))),
        &[],
    )?;
    wait_port(hp)?;
    wait_port(ht)?;

    let (ep, et) = (free_port()?, free_port()?);
    let edgegw_proc = edgegw(dir, prefix, ep, et, backend_port, cert, key)?;
    wait_port(ep)?;
    wait_port(et)?;
    Ok(Proxies {
        peers,
        haproxy: (haproxy, hp, ht),
        edgegw: (edgegw_proc, ep, et),
    })
}

/// Concurrent streams per connection in the "h2" scenario.
const H2_STREAMS: u64 = 32;
/// Connections of the "h2" scenario (each with `H2_STREAMS` streams).
const H2_CONNECTIONS: u64 = 8;

/// Alternating rounds of edgegw and each peer; prints the median round of
/// each and edgegw's ratios to each peer.
fn measure(s: &Scenario, connections: u64, duration: u64, rounds: u64) -> anyhow::Result<()> {
    let headers: Vec<&str> = s.header.into_iter().collect();
    let all: Vec<&Target> = std::iter::once(&s.edgegw).chain(&s.peers).collect();
    let load = |url: &str, secs: u64| match s.load {
        Load::Wrk => wrk_with(url, connections, secs, &headers),
        Load::H2 { body } => h2load(url, secs, body),
        Load::Resumed => s_time_resumed(url, secs),
    };
    if let Load::Resumed = s.load {
        println!(
            "{}: openssl s_time -reuse, {RESUME_CLIENTS} clients; p50 and p99 hold the mean time per connection, errors the connections not resumed",
            s.name
        );
    }
    let contenders: Vec<(&str, u32)> = all.iter().map(|t| (t.label, t.pid)).collect();
    let medians = super::alternating_rounds(s.name, &contenders, duration, rounds, |i, secs| {
        load(&all[i].url, secs)
    })?;
    let name = s.name;
    let e = &medians[0];
    for (t, n) in s.peers.iter().zip(&medians[1..]) {
        let (rps_target, p99_target, cpu_target) = match t.label {
            "nginx" if name == "apim" => (" (target >= 1.2x)", " (target <= 1.2x)", ""),
            "nginx" => (" (target >= 1.0x)", " (target <= 1.2x)", ""),
            "haproxy" => (" (target >= 1.0x)", "", " (target <= 1.0x)"),
            _ => ("", "", ""),
        };
        println!(
            "{name:<10} edgegw/{}: requests/s {:.2}x{rps_target}, p99 {:.2}x{p99_target}, p50 {:.2}x, CPU per request {:.2}x{cpu_target}",
            t.label,
            e.rps / n.rps,
            e.p99_ms / n.p99_ms,
            e.p50_ms / n.p50_ms,
            e.cpu_us / n.cpu_us
        );
    }
    Ok(())
}

/// The round with the median requests/s.
pub(super) fn median(mut runs: Vec<Measure>) -> Measure {
    runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

fn edgegw(
    dir: &Path,
    prefix: &str,
    port: u16,
    tls_port: u16,
    backend_port: u16,
    cert: &Path,
    key: &Path,
) -> anyhow::Result<Proc> {
    let config: PathBuf = dir.join(format!("{prefix}edgegw.toml"));
    std::fs::write(
        &config,
        format!(
            "[gateway]\nlisten = \"127.0.0.1:{port}\"\naccess_log = \"off\"\n[xdp]\nmode = \"off\"\n\
             [tls]\nlisten = \"127.0.0.1:{tls_port}\"\n[[tls.certificates]]\ncert = \"{}\"\nkey = \"{}\"\n\
             [[apis]]\nname = \"bench\"\npath = \"/\"\nbackend = \"http://127.0.0.1:{backend_port}\"\n",
            cert.display(),
            key.display()
        ),
    )?;
    let child = Command::new(edgegw_bin())
        .args(["run", "--config"])
        .arg(&config)
        .arg("--runtime-dir")
        .arg(dir.join(format!("{prefix}edgegw.run")))
        .env("EDGEGW_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting edgegw")?;
    Ok(Proc(child))
}

/// `RESUME_CLIENTS` × `openssl s_time -reuse` against the TLS `url` for
/// `secs`: each client connects, sends `GET path HTTP/1.0`, reads the
/// answer and reconnects, resuming its previous session. s_time prints an
/// "r" for each resumed connection.
fn s_time_resumed(url: &str, secs: u64) -> anyhow::Result<Measure> {
    let rest = url.strip_prefix("https://").context("an https URL")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let start = Instant::now();
    let clients: Vec<Child> = (0..RESUME_CLIENTS)
        .map(|_| {
            Command::new("openssl")
                .args(["s_time", "-connect", host, "-reuse", "-www", path])
                .args(["-time", &secs.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .context("running openssl s_time")
        })
        .collect::<anyhow::Result<_>>()?;
    let (mut connections, mut resumed) = (0u64, 0u64);
    for client in clients {
        let out = client.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        // "N connections in T real seconds, B bytes read per connection"
        let n: u64 = text
            .lines()
            .find(|l| l.contains(" connections in ") && l.contains("real seconds"))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no connection count in s_time output:\n{text}"))?;
        connections += n;
        resumed += text
            .lines()
            .filter(|l| !l.is_empty() && l.bytes().all(|b| b"r*t3".contains(&b)))
            .map(|l| l.bytes().filter(|&b| b == b'r').count() as u64)
            .sum::<u64>();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mean_ms = elapsed * 1000.0 * RESUME_CLIENTS as f64 / connections.max(1) as f64;
    Ok(Measure {
        rps: connections as f64 / elapsed,
        p50_ms: mean_ms,
        p99_ms: mean_ms,
        errors: connections.saturating_sub(resumed),
        requests: connections,
        cpu_us: 0.0,
    })
}

/// h2load: HTTP/2 over TLS, `H2_CONNECTIONS` connections of `H2_STREAMS`
/// concurrent streams, for `secs`; with `body`, gRPC-shaped POSTs of it.
/// h2load reports no percentiles: p50 and p99 hold its mean time per
/// request.
fn h2load(url: &str, secs: u64, body: Option<&Path>) -> anyhow::Result<Measure> {
    let mut cmd = Command::new("h2load");
    cmd.args(["-t", "2", "-c", &H2_CONNECTIONS.to_string()])
        .args(["-m", &H2_STREAMS.to_string(), "-D", &secs.to_string()]);
    if let Some(body) = body {
        cmd.arg("-d").arg(body).args([
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
        ]);
    }
    let out = cmd.arg(url).output().context("running h2load")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "h2load {url} failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // "finished in 10.00s, 12345.67 req/s, 1.23MB/s"
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("finished in "))
        .and_then(|l| l.split(", ").nth(1)?.strip_suffix(" req/s")?.parse().ok())
        .with_context(|| format!("no req/s in h2load output:\n{text}"))?;
    // "requests: 100 total, 100 started, 100 done, 98 succeeded, 2 failed, ..."
    let counts = text
        .lines()
        .find_map(|l| l.strip_prefix("requests: "))
        .with_context(|| format!("no request counts in h2load output:\n{text}"))?;
    let count = |what: &str| -> u64 {
        counts
            .split(", ")
            .find_map(|kv| kv.strip_suffix(what)?.trim().parse().ok())
            .unwrap_or(0)
    };
    // "status codes: 100 2xx, 0 3xx, 0 4xx, 0 5xx": an answer other than
    // 2xx (a refused POST, say) is an error, not a request served.
    let not_2xx: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("status codes: "))
        .map(|l| {
            l.split(", ")
                .filter(|kv| !kv.ends_with(" 2xx"))
                .filter_map(|kv| kv.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // "time for request:   1.2ms  20.3ms  3.4ms  1.1ms  80.00%" (min max mean sd)
    let mean = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("time for request:"))
        .and_then(|l| parse_ms(l.split_whitespace().nth(2)?))
        .unwrap_or(f64::NAN);
    Ok(Measure {
        rps,
        p50_ms: mean,
        p99_ms: mean,
        errors: count(" failed") + count(" errored") + count(" timeout") + not_2xx,
        requests: count(" succeeded"),
        cpu_us: 0.0,
    })
}

/// `wrk` sending extra request headers ("Name: value").
pub(super) fn wrk_with(
    url: &str,
    connections: u64,
    secs: u64,
    headers: &[&str],
) -> anyhow::Result<Measure> {
    wrk_in(&[], url, connections, secs, headers)
}

/// `wrk` started by `wrapper` (`nsenter` into a namespace, say) when that
/// is not empty.
pub(super) fn wrk_in(
    wrapper: &[String],
    url: &str,
    connections: u64,
    secs: u64,
    headers: &[&str],
) -> anyhow::Result<Measure> {
    let out = wrapped(wrapper, "wrk")
        .args(headers.iter().flat_map(|h| ["-H", h]))
        .args([
            "-t",
            "2",
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{secs}s"),
            "--latency",
            url,
        ])
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk {url} failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let field = |prefix: &str| -> Option<&str> {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    let rps = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no Requests/sec in wrk output:\n{text}"))?;
    let latency = |p: &str| -> anyhow::Result<f64> {
        let v = field(p).with_context(|| format!("no {p} latency in wrk output:\n{text}"))?;
        parse_ms(v).with_context(|| format!("cannot read latency {v:?}"))
    };
    // "Non-2xx or 3xx responses: N" and "Socket errors: connect A, read B, write C, timeout D".
    let mut errors = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if let Some(socket) = field("Socket errors:") {
        errors += socket
            .split(',')
            .filter_map(|kv| kv.split_whitespace().last()?.parse::<u64>().ok())
            .sum::<u64>();
    }
    // "123456 requests in 5.00s, 20.1MB read"
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no request count in wrk output:\n{text}"))?;
    Ok(Measure {
        rps,
        p50_ms: latency("50%")?,
        p99_ms: latency("99%")?,
        errors,
        requests,
        cpu_us: 0.0,
    })
}

/// Runs `measure` and records the CPU time `pid` and its children spent
/// meanwhile, per request.
pub(super) fn with_cpu(
    pid: u32,
    measure: impl FnOnce() -> anyhow::Result<Measure>,
) -> anyhow::Result<Measure> {
    let before = cpu_ns(pid);
    let mut m = measure()?;
    let spent = cpu_ns(pid).saturating_sub(before);
    m.cpu_us = spent as f64 / 1000.0 / m.requests.max(1) as f64;
    Ok(m)
}

/// Nanoseconds on CPU of every thread of `pid` and of its child processes
/// (nginx's workers), from /proc/*/task/*/schedstat.
fn cpu_ns(pid: u32) -> u64 {
    let threads = |p: u32| -> u64 {
        std::fs::read_dir(format!("/proc/{p}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    };
    let children = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| {
            // The parent pid is the second field after the ")" of the name.
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = &s[s.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        });
    threads(pid) + children.map(threads).sum::<u64>()
}

/// wrk prints latencies as "812.00us", "1.25ms" or "1.02s".
fn parse_ms(v: &str) -> Option<f64> {
    let (num, factor) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|n| n * factor)
}
