//! A private redis-server (Debian's) for the tests of cluster limits: on a
//! free loopback port, with a password, no persistence, optionally TLS
//! only (certificates from the test's own CA, client certificates
//! required), killed by its pid on drop, also when the test fails.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use crate::{
    certs::{TestCa, TestCert},
    process::wait_port,
};

pub const PASSWORD: &str = "cluster-limits-test-password";

/// TLS files of a `rediss://` server and of its clients.
pub struct RedisTls {
    pub ca: PathBuf,
    pub server: TestCert,
    /// The certificate redis-cli (and a gateway) presents.
    pub client: TestCert,
}

impl RedisTls {
    /// A CA of its own and the certificates it signs, in `dir`.
    pub fn new(dir: &Path) -> RedisTls {
        let ca = TestCa::new(dir);
        RedisTls {
            server: ca.leaf(dir, "redis-server", &["127.0.0.1"]),
            client: ca.leaf(dir, "redis-client", &["edgegw"]),
            ca: ca.pem_path.clone(),
        }
    }
}

pub struct RedisServer {
    child: Child,
    pub port: u16,
    tls: Option<RedisTls>,
}

impl RedisServer {
    /// A plain server with `PASSWORD` on `port`, `dir` its working folder.
    pub fn start(dir: &Path, port: u16) -> RedisServer {
        RedisServer::spawn(dir, port, None)
    }

    /// A server that speaks only TLS on `port` and requires a client
    /// certificate signed by the test's CA.
    pub fn start_tls(dir: &Path, port: u16, tls: RedisTls) -> RedisServer {
        RedisServer::spawn(dir, port, Some(tls))
    }

    fn spawn(dir: &Path, port: u16, tls: Option<RedisTls>) -> RedisServer {
        let mut cmd = Command::new("redis-server");
        match &tls {
            None => cmd.args(["--port", &port.to_string()]),
            Some(t) => cmd
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .arg("--tls-cert-file")
                .arg(&t.server.cert)
                .arg("--tls-key-file")
                .arg(&t.server.key)
                .arg("--tls-ca-cert-file")
                .arg(&t.ca)
                .args(["--tls-auth-clients", "yes"]),
        };
        let child = cmd
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--requirepass", PASSWORD])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server is missing: run `cargo xtask setup` (Debian package redis-server)",
            );
        wait_port(&format!("127.0.0.1:{port}"));
        RedisServer { child, port, tls }
    }

    /// The TLS files, for a `rediss://` server.
    pub fn tls(&self) -> Option<&RedisTls> {
        self.tls.as_ref()
    }

    /// `redis-cli ARGS` against this server; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-p", &self.port.to_string(), "--no-auth-warning"])
            .args(["-a", PASSWORD]);
        if let Some(t) = &self.tls {
            cmd.arg("--tls")
                .arg("--cacert")
                .arg(&t.ca)
                .arg("--cert")
                .arg(&t.client.cert)
                .arg("--key")
                .arg(&t.client.key);
        }
        let out = cmd.args(args).output().expect("running redis-cli");
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Every key and its value.
    pub fn counters(&self) -> Vec<(String, u64)> {
        self.cli(&["--scan"])
            .lines()
            .map(|k| (k.to_string(), self.cli(&["GET", k]).parse().unwrap_or(0)))
            .collect()
    }

    /// SIGSTOP: the server keeps its connections open and answers nothing
    /// (a hung Redis); `resume` undoes it.
    pub fn freeze(&self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGSTOP).unwrap();
    }

    pub fn resume(&self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGCONT).unwrap();
    }

    pub fn stop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
