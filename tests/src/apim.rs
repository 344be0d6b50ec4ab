//! API-management test helpers: a gateway started with a catalog file,
//! key hashing as operators do it, and curl with response headers.

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

use crate::{
    gateway::TestGateway,
    process::{Daemon, TempDir, edgegw_bin, free_port},
};

/// A gateway whose `[catalog]` points at `catalog` (written in its own
/// directory, so the test can rewrite it and send SIGHUP).
pub struct ApimGateway {
    pub gw: TestGateway,
    pub catalog: PathBuf,
    _dir: TempDir,
}

impl ApimGateway {
    /// `rest` is the gateway config after the base sections (APIs,
    /// backends); `catalog` the YAML text.
    pub fn start(tag: &str, rest: &str, catalog: &str) -> ApimGateway {
        let dir = TempDir::new(&format!("{tag}-cat"));
        let path = dir.write("catalog.yaml", catalog);
        let rest = format!("{rest}\n[catalog]\nfile = \"{}\"\n", path.display());
        ApimGateway {
            gw: TestGateway::start(tag, &rest),
            catalog: path,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.gw.url(path)
    }
}

/// The hex SHA-256 of `key`, from `edgegw catalog hash-key` (the
/// operator's tool), given the key on standard input as operators should.
pub fn hash_key(key: &str) -> String {
    let out = hash_key_stdin(&format!("{key}\n"));
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `edgegw catalog hash-key` with `input` on standard input.
pub fn hash_key_stdin(input: &str) -> std::process::Output {
    let mut child = Command::new(edgegw_bin())
        .args(["catalog", "hash-key"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running edgegw");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A curl answer: status, lower-cased header lines, body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

/// Runs curl with `args`, returning the status, headers and body.
pub fn fetch(args: &[&str]) -> Answer {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .expect("running curl");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// Starts `edgegw run` with `rest` (APIs, backends) and the catalog file
/// `catalog`, which it must refuse: waits for it to exit and answers its
/// log.
pub fn refused_start(tmp: &TempDir, rest: &str, catalog: &std::path::Path) -> String {
    let (port, admin) = (free_port(), free_port());
    let text = format!(
        "{}{rest}[catalog]\nfile = \"{}\"\n",
        TestGateway::base_config(tmp, port, admin),
        catalog.display()
    );
    let config = tmp.write("edgegw.toml", &text);
    let mut cmd = Command::new(edgegw_bin());
    cmd.args(["run", "--config", config.to_str().unwrap(), "--runtime-dir"])
        .arg(tmp.0.join("run"));
    let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
    wait_until(
        || daemon.child.try_wait().unwrap().is_some(),
        "edgegw refuses",
    );
    daemon.log_text()
}

/// `xml` indented by `indent` spaces, to sit under a YAML block scalar
/// (`policies: |`) in a catalog.
pub fn block(xml: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    xml.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// Polls `done` every 100 ms for up to 20 s; panics naming `what`.
pub fn wait_until(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
