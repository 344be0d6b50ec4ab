//! HAProxy (Debian's `haproxy`) as the second peer of `cargo xtask bench
//! proxy` and `bench instructions`: a private process in the foreground
//! (`-db`) with its own configuration on free loopback ports, doing the
//! same job as edgegw and the `Same` nginx peer:
//!
//! - plain and TLS reverse proxy writing the same headers to the backend
//!   (`X-Forwarded-For`, `-Proto`, `-Host`, `Forwarded`, a new
//!   `traceparent`) and `X-Request-Id` to the client, with pooled backend
//!   connections (`http-reuse always`);
//! - API management: the key looked up in a map of the valid keys (401
//!   otherwise), a per-key request rate tracked in a stick table (429
//!   above a limit that never triggers), the same `set-header`s and the
//!   `RateLimit` headers edgegw's limit writes.

use std::{fmt::Write as _, path::Path, process::Stdio};

use anyhow::Context;

use super::{
    apim::{KEY_HEADER, key},
    proxy::{Proc, wrapped},
};

/// The headers edgegw writes on every request, as HAProxy rules: what
/// `Peer::Same` does for nginx.
const SAME_HEADERS: &str = "\
  option forwardfor
  unique-id-format %[uuid(4)]
  http-request set-header X-Forwarded-Proto https if { ssl_fc }
  http-request set-header X-Forwarded-Proto http if !{ ssl_fc }
  http-request set-header X-Forwarded-Host %[req.hdr(host)]
  http-request set-header Forwarded for=%[src];proto=%[req.hdr(x-forwarded-proto)];host=\\\"%[req.hdr(host)]\\\"
  http-request set-header traceparent 00-%[unique-id,regsub(-,,g)]-%[rand,hex]-01
  http-response set-header X-Request-Id %[unique-id]
";

/// `global` and `defaults`: HTTP mode, keep-alive on both sides, one
/// thread per CPU (HAProxy's default).
const HEAD: &str = "global\n  maxconn 8000\n\
     defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\
     \x20 option http-keep-alive\n  http-reuse always\n";

/// A whole configuration: the common head, `frontend` (ending with
/// `default_backend be`) and the backend.
pub(super) fn config(frontend: &str, backend_port: u16) -> String {
    format!("{HEAD}{frontend}{}", backend(backend_port))
}

fn backend(backend_port: u16) -> String {
    format!("backend be\n  server b 127.0.0.1:{backend_port} maxconn 1000\n")
}

/// The reverse proxy on `plain` and (TLS, the certificate and key in one
/// PEM file) on `tls`.
pub(super) fn proxy_config(backend_port: u16, plain: u16, tls: Option<(u16, &Path)>) -> String {
    let mut cfg = HEAD.to_string();
    let _ = writeln!(cfg, "frontend fe\n  bind 127.0.0.1:{plain}");
    if let Some((port, pem)) = tls {
        let _ = writeln!(
            cfg,
            "  bind 127.0.0.1:{port} ssl crt {} alpn h2,http/1.1 ssl-min-ver TLSv1.2",
            pem.display()
        );
    }
    cfg.push_str(SAME_HEADERS);
    cfg.push_str("  default_backend be\n");
    cfg.push_str(&backend(backend_port));
    cfg
}

/// The API-management job on `port` with `keys` valid keys (a map file in
/// `dir`).
pub(super) fn apim_config(
    dir: &Path,
    keys: usize,
    port: u16,
    backend_port: u16,
) -> anyhow::Result<String> {
    let map = dir.join("keys.map");
    let mut text = String::new();
    for i in 0..keys {
        let _ = writeln!(text, "{} s{i}", key(i));
    }
    std::fs::write(&map, text)?;
    let mut cfg = HEAD.to_string();
    let _ = write!(
        cfg,
        "frontend apim\n  bind 127.0.0.1:{port}\n\
         \x20 http-request set-var(txn.sub) req.hdr({KEY_HEADER}),map({map})\n\
         \x20 http-request return status 401 content-type application/json string '{{\"statusCode\": 401}}' if !{{ var(txn.sub) -m found }}\n\
         \x20 http-request track-sc0 var(txn.sub) table subs\n\
         \x20 http-request return status 429 if {{ sc_http_req_rate(0) gt 1000000000 }}\n\
         \x20 http-request del-header {KEY_HEADER}\n\
         \x20 http-request set-header X-Gateway edgegw\n\
         \x20 http-response set-header X-Served-By haproxy\n\
         \x20 http-response set-header RateLimit-Policy '\"rate-limit-by-key\";q=1000000000;w=60'\n\
         \x20 http-response set-header RateLimit '\"rate-limit-by-key\";r=999999999;t=60'\n",
        map = map.display()
    );
    cfg.push_str(SAME_HEADERS);
    cfg.push_str("  default_backend be\n");
    cfg.push_str(&backend(backend_port));
    cfg.push_str(
        "backend subs\n  stick-table type string len 32 size 100k expire 60s store http_req_rate(60s)\n",
    );
    Ok(cfg)
}

/// HAProxy with configuration `cfg` (written to `dir/name.cfg`), started
/// by `wrapper` (valgrind's, say) when that is not empty, with one thread
/// under a wrapper (so that valgrind sees one serving thread, as nginx runs
/// one process there); checked with `-c` first so that a bad
/// configuration fails with HAProxy's message.
pub(super) fn start(dir: &Path, name: &str, cfg: &str, wrapper: &[String]) -> anyhow::Result<Proc> {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub)?;
    let path = sub.join("haproxy.cfg");
    let cfg = if wrapper.is_empty() {
        cfg.to_string()
    } else {
        cfg.replacen("global\n", "global\n  nbthread 1\n", 1)
    };
    std::fs::write(&path, cfg)?;
    let check = std::process::Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&path)
        .output()
        .context("running haproxy -c")?;
    if !check.status.success() {
        anyhow::bail!(
            "haproxy rejects {}: {}{}",
            path.display(),
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let child = wrapped(wrapper, "haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting haproxy")?;
    Ok(Proc(child))
}

/// HAProxy reads the certificate and its key from one PEM file.
pub(super) fn pem(dir: &Path, cert: &Path, key: &Path) -> anyhow::Result<std::path::PathBuf> {
    let pem = dir.join("haproxy.pem");
    let mut text = std::fs::read_to_string(cert)?;
    text.push_str(&std::fs::read_to_string(key)?);
    std::fs::write(&pem, text)?;
    Ok(pem)
}
