//! The real control plane, `edgegw-cp serve`, as a child process: HTTPS on
//! a free loopback port with a throwaway CA, its own store (a SQLite file,
//! or a database of its own on the private PostgreSQL server), and an
//! admin token made with its CLI. Clients are curl processes, so tests see
//! exactly what any HTTP client sees. `on_both_stores!` runs a test body
//! once per store.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

pub mod corpus;

use crate::{apim::Answer, certs::TestCa, postgres, process::Daemon};

/// Which store a control plane runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Sqlite,
    Postgres,
}

/// A store made for one test: its `--db` arguments.
#[derive(Clone, Debug)]
pub enum Db {
    /// A SQLite file.
    File(PathBuf),
    /// A database on the private PostgreSQL server; the password comes
    /// from the server's password file.
    Postgres(postgres::Database),
}

impl Db {
    /// A new, empty store of `kind` (a SQLite file is made in `dir`).
    pub fn new(kind: Store, dir: &Path) -> Db {
        match kind {
            Store::Sqlite => Db::File(dir.join("cp.db")),
            Store::Postgres => Db::postgres(),
        }
    }

    /// A new, empty database on the private PostgreSQL server.
    pub fn postgres() -> Db {
        Db::Postgres(postgres::server().create_database())
    }

    /// The same store, reached in a way that works from inside a network
    /// namespace: PostgreSQL over its Unix socket.
    pub fn over_socket(self) -> Db {
        match self {
            Db::Postgres(db) => Db::Postgres(postgres::Database {
                url: db.socket_url.clone(),
                ..db
            }),
            file => file,
        }
    }

    /// `--db ... [--db-password-file ...]` for any edgegw-cp command.
    pub fn args(&self) -> Vec<String> {
        match self {
            Db::File(path) => vec!["--db".into(), path.display().to_string()],
            Db::Postgres(db) => vec![
                "--db".into(),
                db.url.clone(),
                "--db-password-file".into(),
                postgres::server().password_file.display().to_string(),
            ],
        }
    }
}

/// Runs each named test body (`fn body(store: Store)`) twice, as the tests
/// `body::sqlite` and `body::postgres`.
#[macro_export]
macro_rules! on_both_stores {
    ($($body:ident),+ $(,)?) => {
        $(
            mod $body {
                #[test]
                fn sqlite() {
                    super::$body($crate::cp::Store::Sqlite)
                }

                #[test]
                fn postgres() {
                    super::$body($crate::cp::Store::Postgres)
                }
            }
        )+
    };
}

/// The binary under test: `EDGEGW_CP_BIN` (set by `cargo xtask test`), or
/// the production build in the workspace.
pub fn cp_bin() -> PathBuf {
    let bin = std::env::var_os("EDGEGW_CP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/production/edgegw-cp")
        });
    assert!(
        bin.exists(),
        "{} missing: run the tests with `cargo xtask test`",
        bin.display()
    );
    bin
}

/// Runs `edgegw-cp ARGS` to completion.
pub fn edgegw_cp<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(cp_bin())
        .args(args)
        .output()
        .expect("running edgegw-cp")
}

/// A running `edgegw-cp serve`; killed by pid on drop.
pub struct ControlPlane {
    pub daemon: Daemon,
    pub dir: PathBuf,
    pub db: Db,
    pub port: u16,
    pub admin_token: String,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    extra: Vec<String>,
}

impl ControlPlane {
    /// Starts a control plane on SQLite whose files (database,
    /// certificates, log) live in `dir`.
    pub fn start(dir: &Path) -> ControlPlane {
        ControlPlane::launch(Store::Sqlite, dir, &[])
    }

    /// Same, with extra `serve` arguments (e.g. `--token-ttl 1h`).
    pub fn start_with(dir: &Path, extra: &[&str]) -> ControlPlane {
        ControlPlane::launch(Store::Sqlite, dir, extra)
    }

    /// Starts a control plane on a new store of `kind`, with extra `serve`
    /// arguments; its files (certificates, log, a SQLite database) live
    /// in `dir`.
    pub fn launch(kind: Store, dir: &Path, extra: &[&str]) -> ControlPlane {
        ControlPlane::on(Db::new(kind, dir), dir, extra)
    }

    /// Starts a control plane on `db` (e.g. a second replica on the same
    /// PostgreSQL database); it makes its own admin token.
    pub fn on(db: Db, dir: &Path, extra: &[&str]) -> ControlPlane {
        let ca = TestCa::new(dir);
        let leaf = ca.leaf(dir, "cp", &["localhost", "127.0.0.1"]);
        let mut create = vec!["admin-token".to_string(), "create".into()];
        create.extend(db.args());
        let out = edgegw_cp(&create);
        assert!(out.status.success(), "admin-token create: {out:?}");
        let admin_token = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let mut cp = ControlPlane {
            daemon: spawn(dir, &db, &leaf.cert, &leaf.key, 0, extra),
            dir: dir.to_path_buf(),
            db,
            port: 0,
            admin_token,
            ca: ca.pem_path.clone(),
            cert: leaf.cert,
            key: leaf.key,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        cp.port = wait_ready(&mut cp.daemon);
        cp
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The CA that signed the control plane's certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca
    }

    /// An admin request; `body` is sent as JSON. Answers status and JSON
    /// (`Value::Null` for an empty body).
    pub fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let text = body.map(|b| b.to_string());
        let answer = self.request(
            method,
            path,
            Some(&self.admin_token),
            &[],
            text.as_deref().map(str::as_bytes),
        );
        (answer.status, json_or_null(&answer.body))
    }

    /// Any request: bearer `token`, extra `-H` headers, raw body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[&str],
        body: Option<&[u8]>,
    ) -> Answer {
        let url = format!("{}{path}", self.url());
        let mut args: Vec<String> = vec![
            "-sS".into(),
            "-i".into(),
            "--max-time".into(),
            "90".into(),
            "--cacert".into(),
            self.ca.display().to_string(),
            "-X".into(),
            method.into(),
            "-H".into(),
            "Expect:".into(),
        ];
        if let Some(token) = token {
            args.extend(["-H".into(), format!("Authorization: Bearer {token}")]);
        }
        for h in headers {
            args.extend(["-H".into(), h.to_string()]);
        }
        if body.is_some() {
            args.extend([
                "-H".into(),
                "Content-Type: application/json".into(),
                "--data-binary".into(),
                "@-".into(),
            ]);
        }
        args.push(url);
        let mut child = Command::new("curl")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running curl (cargo xtask setup installs it)");
        let mut stdin = child.stdin.take().unwrap();
        let body = body.map(<[u8]>::to_vec);
        // A writer thread: the server may answer (413) before reading all.
        let writer = std::thread::spawn(move || {
            if let Some(body) = body {
                let _ = stdin.write_all(&body);
            }
        });
        let out = child.wait_with_output().unwrap();
        let _ = writer.join();
        assert!(
            out.status.success(),
            "curl {method} {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_answer(&String::from_utf8_lossy(&out.stdout))
    }

    /// A request with a gateway token (the gateway's side of the protocol).
    pub fn gateway(
        &self,
        token: &str,
        method: &str,
        path: &str,
        headers: &[&str],
        body: Option<&Value>,
    ) -> Answer {
        let text = body.map(|b| b.to_string());
        self.request(
            method,
            path,
            Some(token),
            headers,
            text.as_deref().map(str::as_bytes),
        )
    }

    /// A fresh token for gateway `name`, registering it (with no APIs) if
    /// it does not exist yet.
    pub fn gateway_token(&self, name: &str) -> String {
        let (status, body) = self.admin("GET", &format!("/v1/gateways/{name}"), None);
        if status == 404 {
            let (status, body) = self.admin(
                "POST",
                "/v1/gateways",
                Some(&serde_json::json!({"name": name})),
            );
            assert_eq!(status, 201, "{body}");
            return body["token"].as_str().unwrap().to_string();
        }
        assert_eq!(status, 200, "{body}");
        let (status, body) = self.admin("POST", &format!("/v1/gateways/{name}/token"), None);
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// SIGTERM and wait; the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        self.daemon.stop()
    }

    /// SIGKILL (a crash); the database stays.
    pub fn kill(&mut self) {
        let _ = self.daemon.child.kill();
        let _ = self.daemon.child.wait();
    }

    /// Stops it and starts it again on the same port and database with
    /// other extra `serve` arguments.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.stop();
        self.extra = extra.iter().map(|s| s.to_string()).collect();
        self.restart();
    }

    /// Starts it again on the same port and database after `stop`/`kill`.
    pub fn restart(&mut self) {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        self.daemon = spawn(
            &self.dir, &self.db, &self.cert, &self.key, self.port, &extra,
        );
        let port = wait_ready(&mut self.daemon);
        assert_eq!(port, self.port);
    }

    pub fn log_text(&self) -> String {
        self.daemon.log_text()
    }

    /// `edgegw-cp ARGS --db ...` on this control plane's store.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(self.db.args());
        edgegw_cp(&all)
    }
}

fn spawn(dir: &Path, db: &Db, cert: &Path, key: &Path, port: u16, extra: &[&str]) -> Daemon {
    let mut cmd = Command::new(cp_bin());
    cmd.arg("serve")
        .args(db.args())
        .args(["--listen", &format!("127.0.0.1:{port}"), "--tls-cert"])
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .args(extra);
    let log = dir.join(format!("cp-{}.log", crate::netns::unique_name("l")));
    Daemon::spawn(cmd, log)
}

/// Waits for the ready line; returns the port it names.
fn wait_ready(daemon: &mut Daemon) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = daemon.log_text();
        if let Some(line) = log.lines().find(|l| l.contains("edgegw-cp ready")) {
            let addr = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("listen="))
                .unwrap_or_else(|| panic!("no listen= in {line:?}"));
            return addr.rsplit(':').next().unwrap().parse().unwrap();
        }
        if let Some(status) = daemon.child.try_wait().unwrap() {
            panic!("edgegw-cp exited ({status}) before ready:\n{log}");
        }
        assert!(
            Instant::now() < deadline,
            "edgegw-cp not ready after 20 s:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Parses `curl -i` output, skipping interim (1xx) answers.
fn parse_answer(text: &str) -> Answer {
    let mut rest = text;
    loop {
        let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
        let status: u16 = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {text:?}"));
        if (100..200).contains(&status) {
            rest = body;
            continue;
        }
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        return Answer {
            status,
            headers,
            body: body.to_string(),
        };
    }
}

fn json_or_null(body: &str) -> Value {
    if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
    }
}
