//! The `edgegw` daemon configured for proxy tests: ephemeral loopback
//! ports, XDP off, an admin listener and an access log file; plus the
//! clients the tests use (curl, raw TCP).

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::Command,
    time::Duration,
};

use crate::process::{Daemon, TempDir, edgegw_bin, free_port, wait_port};

/// A running gateway and its files.
pub struct TestGateway {
    pub daemon: Daemon,
    pub port: u16,
    pub admin_port: u16,
    pub config: PathBuf,
    pub access_log: PathBuf,
    pub tmp: TempDir,
}

impl TestGateway {
    /// The `[gateway]`, `[xdp]` and `[admin]` sections for this test; the
    /// caller appends APIs, backends, limits and TLS.
    pub fn base_config(tmp: &TempDir, port: u16, admin_port: u16) -> String {
        format!(
            r#"
[gateway]
listen = "127.0.0.1:{port}"
drain_timeout_secs = 5
access_log = "{}"
[xdp]
mode = "off"
[admin]
listen = "127.0.0.1:{admin_port}"
"#,
            tmp.0.join("access.log").display()
        )
    }

    /// Starts the gateway with the base config followed by `rest`.
    pub fn start(tag: &str, rest: &str) -> TestGateway {
        Self::start_with_env(tag, rest, &[])
    }

    /// `start`, with extra environment variables for the daemon.
    pub fn start_with_env(tag: &str, rest: &str, env: &[(&str, &str)]) -> TestGateway {
        Self::start_as(tag, rest, env, None)
    }

    /// `start`, the daemon seeing `hosts` as its `/etc/hosts`: it runs in a
    /// mount namespace of its own with the file bound over the system's,
    /// which stays untouched. Rewriting `hosts` in place changes what the
    /// daemon's names resolve to.
    pub fn start_with_hosts(
        tag: &str,
        rest: &str,
        env: &[(&str, &str)],
        hosts: &std::path::Path,
    ) -> TestGateway {
        Self::start_as(tag, rest, env, Some(hosts))
    }

    fn start_as(
        tag: &str,
        rest: &str,
        env: &[(&str, &str)],
        hosts: Option<&std::path::Path>,
    ) -> TestGateway {
        let tmp = TempDir::new(tag);
        let (port, admin_port) = (free_port(), free_port());
        let text = format!("{}{rest}", Self::base_config(&tmp, port, admin_port));
        let config = tmp.write("edgegw.toml", &text);
        let mut cmd = match hosts {
            None => Command::new(edgegw_bin()),
            Some(hosts) => {
                let mut unshare = Command::new("unshare");
                unshare
                    .args(["--mount", "--propagation", "private", "sh", "-c"])
                    .arg("mount --bind \"$0\" /etc/hosts && exec \"$@\"")
                    .arg(hosts)
                    .arg(edgegw_bin());
                unshare
            }
        };
        cmd.args(["run", "--config", config.to_str().unwrap()])
            .env("EDGEGW_LOG", "info")
            .envs(env.iter().copied());
        let mut daemon = Daemon::spawn(cmd, tmp.0.join("daemon.log"));
        daemon.wait_ready();
        wait_port(&format!("127.0.0.1:{port}"));
        TestGateway {
            daemon,
            port,
            admin_port,
            config,
            access_log: tmp.0.join("access.log"),
            tmp,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `GET /metrics` from the admin listener.
    pub fn metrics(&self) -> String {
        let (status, body) = curl(&[&format!("http://127.0.0.1:{}/metrics", self.admin_port)]);
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The value of one metric line (`name{labels}`), 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics(), series)
    }

    /// Waits (up to 10 s) until `series` equals `want`; returns its last
    /// value. Counters are updated when a response or connection ends,
    /// which can be just after the client saw it.
    pub fn wait_metric(&self, series: &str, want: f64) -> f64 {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.metric(series);
            if v == want || std::time::Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to 10 s) until the access log has `n` lines; returns them.
    pub fn wait_access_log(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.access_log_lines();
            if lines.len() >= n || std::time::Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The access log's JSON lines.
    pub fn access_log_lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// The value of `series` in a Prometheus text exposition, 0 when absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// Runs curl with `args` (plus -sS and a 10 s cap); returns the status and
/// the body.
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("running curl (cargo xtask setup installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let status = code.trim().parse().unwrap_or(0);
    assert!(
        status != 0 || !out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (status, body.to_string())
}

/// Like `curl` but parses the body as JSON.
pub fn curl_json(args: &[&str]) -> (u16, serde_json::Value) {
    let (status, body) = curl(args);
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    (status, json)
}

/// Sends raw bytes on a new connection and returns everything the server
/// writes, and whether it closed the connection (within 5 s).
pub fn raw_exchange(port: u16, request: &[u8]) -> (String, bool) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).unwrap();
    read_until_close(&mut stream)
}

/// Reads until the peer closes (true) or 5 s of silence (false).
pub fn read_until_close(stream: &mut TcpStream) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}
