//! The "jwt" scenario of `cargo xtask bench proxy`: every request carries
//! an RS256 token the bench made with its own RSA 2048 key (openssl), and
//! the proxy checks its signature, `exp`, `iss` and `aud` before
//! forwarding:
//!
//! - edgegw: `validate-jwt` with the public key inline, `issuers` and
//!   `audiences`;
//! - HAProxy: `jwt_header_query` (the algorithm), `jwt_payload_query`
//!   (`iss`, `aud`, `exp` against `date()`) and `jwt_verify` with the
//!   public key file.
//!
//! nginx is not measured: Debian's nginx has no module that verifies a JWT
//! signature (auth_jwt is nginx Plus only, and Debian ships no njs).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::proxy::{Proc, Target, free_port, wait_port};

const ISSUER: &str = "https://issuer.bench.example";
const AUDIENCE: &str = "bench-api";

/// The JWT proxies, running; stopped on drop.
pub(super) struct Jwt {
    _procs: Vec<Proc>,
    pub(super) edgegw: Target,
    pub(super) peers: Vec<Target>,
    /// `Authorization: Bearer <token>`.
    pub(super) header: String,
}

/// An RSA 2048 key pair in `dir`: (private, public) PEM files.
pub(crate) fn key_pair(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (private, public) = (dir.join("jwt-private.pem"), dir.join("jwt-public.pem"));
    crate::setup::run(
        Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&private)
            .stderr(std::process::Stdio::null()),
    )?;
    crate::setup::run(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public),
    )?;
    Ok((private, public))
}

/// An RS256 token for `ISSUER` and `AUDIENCE`, valid for an hour, signed
/// by openssl with `private`.
pub(crate) fn token(dir: &Path, private: &Path) -> anyhow::Result<String> {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 3600;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"bench","exp":{exp}}}"#
    ));
    let signed = format!("{header}.{claims}");
    let input = dir.join("jwt-input");
    std::fs::write(&input, &signed)?;
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(private)
        .arg(&input)
        .output()
        .context("running openssl dgst")?;
    if !out.status.success() {
        bail!(
            "openssl dgst -sign failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(out.stdout)))
}

/// The catalog: one open API whose inbound section validates the token.
pub(crate) fn catalog(public: &Path) -> anyhow::Result<String> {
    let pem = std::fs::read_to_string(public)?;
    let indented: String = pem
        .lines()
        .map(|l| format!("                  {l}\n"))
        .collect();
    Ok(format!(
        "apis:\n  - name: bench\n    subscription_required: false\n    policies:\n      inbound:\n\
         \x20       - validate-jwt:\n\
         \x20           issuers: [\"{ISSUER}\"]\n\
         \x20           audiences: [\"{AUDIENCE}\"]\n\
         \x20           signing_keys:\n\
         \x20             - alg: RS256\n\
         \x20               pem: |\n{indented}"
    ))
}

fn haproxy_config(port: u16, backend_port: u16, public: &Path) -> String {
    let key = public.display();
    let frontend = format!(
        "frontend jwt\n  bind 127.0.0.1:{port}\n\
         \x20 http-request set-var(txn.bearer) http_auth_bearer\n\
         \x20 http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')\n\
         \x20 http-request deny deny_status 401 unless {{ var(txn.alg) -m str RS256 }}\n\
         \x20 http-request deny deny_status 401 unless {{ var(txn.bearer),jwt_payload_query('$.iss') -m str {ISSUER} }}\n\
         \x20 http-request deny deny_status 401 unless {{ var(txn.bearer),jwt_payload_query('$.aud') -m str {AUDIENCE} }}\n\
         \x20 http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')\n\
         \x20 http-request set-var(txn.now) date()\n\
         \x20 http-request deny deny_status 401 unless {{ var(txn.exp),sub(txn.now) -m int gt 0 }}\n\
         \x20 http-request deny deny_status 401 unless {{ var(txn.bearer),jwt_verify(txn.alg,\"{key}\") -m int 1 }}\n\
         \x20 option forwardfor\n\
         \x20 default_backend be\n"
    );
    super::haproxy::config(&frontend, backend_port)
}

/// Starts edgegw and HAProxy validating tokens in front of the backend on
/// `backend_port`, and checks each accepts the bench's token and refuses
/// a tampered one.
pub(super) fn start(dir: &Path, backend_port: u16) -> anyhow::Result<Jwt> {
    let (private, public) = key_pair(dir)?;
    let token = token(dir, &private)?;
    let mut procs = Vec::new();
    let hp = free_port()?;
    let haproxy = super::haproxy::start(
        dir,
        "jwt-haproxy",
        &haproxy_config(hp, backend_port, &public),
        &[],
    )?;
    wait_port(hp)?;
    let peers = vec![Target {
        label: "haproxy",
        url: format!("http://127.0.0.1:{hp}/b"),
        pid: haproxy.0.id(),
    }];
    procs.push(haproxy);
    let ep = free_port()?;
    let proc = super::apim::start_edgegw(dir, "jwt", ep, backend_port, Some(&catalog(&public)?))?;
    wait_port(ep)?;
    let edgegw = Target {
        label: "edgegw",
        url: format!("http://127.0.0.1:{ep}/b"),
        pid: proc.0.id(),
    };
    procs.push(proc);
    let header = format!("Authorization: Bearer {token}");
    // A token whose claims were changed after signing.
    let (head, rest) = token.split_once('.').expect("a JWT has three parts");
    let (_, signature) = rest.split_once('.').expect("a JWT has three parts");
    let forged_claims = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"admin","exp":9999999999}}"#
    ));
    let forged = format!("Authorization: Bearer {head}.{forged_claims}.{signature}");
    for url in std::iter::once(&edgegw.url).chain(peers.iter().map(|p| &p.url)) {
        super::apim::expect_statuses(url, &header, &forged, "the token", "a forged one")?;
    }
    Ok(Jwt {
        _procs: procs,
        edgegw,
        peers,
        header,
    })
}
