//! A centrally managed `edgegw` node for the sync tests: its own directory
//! (config, token file, backups, runtime dir) that survives restarts of the
//! daemon, ephemeral loopback ports, XDP off unless the test says otherwise.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

use crate::{
    gateway::curl,
    process::{Daemon, TempDir, edgegw, edgegw_bin, free_port, wait_port},
};

/// A gateway node: files on disk, and the daemon when it runs.
pub struct ManagedNode {
    // Declared first so it is dropped first: a stopping node writes its
    // backup, which must happen before `dir` is removed.
    pub daemon: Option<Daemon>,
    pub dir: TempDir,
    pub port: u16,
    pub admin_port: u16,
    pub config: PathBuf,
    pub token_file: PathBuf,
    pub backup_dir: PathBuf,
    pub runtime_dir: PathBuf,
    /// Extra environment for the daemon (e.g. `SSL_CERT_FILE` to trust a
    /// test CA for backends).
    pub env: Vec<(String, String)>,
    runs: u32,
}

impl ManagedNode {
    /// Writes the node's files: `[control_plane]` at `cp_url` (with
    /// `ca_file` if given), the token, and `extra` appended to the config
    /// (e.g. an `[xdp]` section; without one XDP is off).
    pub fn new(
        tag: &str,
        cp_url: &str,
        ca_file: Option<&Path>,
        token: &str,
        extra: &str,
    ) -> ManagedNode {
        let dir = TempDir::new(tag);
        let (port, admin_port) = (free_port(), free_port());
        let token_file = dir.write("token", token);
        let backup_dir = dir.0.join("backup");
        let runtime_dir = dir.0.join("run");
        let ca = ca_file
            .map(|p| format!("ca_file = \"{}\"\n", p.display()))
            .unwrap_or_default();
        let xdp = if extra.contains("[xdp]") {
            String::new()
        } else {
            "[xdp]\nmode = \"off\"\n".into()
        };
        let text = format!(
            r#"[gateway]
listen = "127.0.0.1:{port}"
drain_timeout_secs = 2
access_log = "off"
[admin]
listen = "127.0.0.1:{admin_port}"
{xdp}[control_plane]
url = "{cp_url}"
token_file = "{}"
backup_dir = "{}"
heartbeat_secs = 1
poll_wait_secs = 5
startup_timeout_secs = 5
{ca}{extra}"#,
            token_file.display(),
            backup_dir.display(),
        );
        let config = dir.write("edgegw.toml", &text);
        ManagedNode {
            dir,
            port,
            admin_port,
            config,
            token_file,
            backup_dir,
            runtime_dir,
            daemon: None,
            env: Vec::new(),
            runs: 0,
        }
    }

    /// `edgegw run` for this node, not waited for.
    pub fn spawn(&mut self) -> &mut Daemon {
        self.runs += 1;
        let mut cmd = Command::new(edgegw_bin());
        cmd.args([
            "run",
            "--config",
            self.config.to_str().unwrap(),
            "--runtime-dir",
        ])
        .arg(&self.runtime_dir)
        .env("EDGEGW_LOG", "info")
        .envs(self.env.iter().map(|(k, v)| (k, v)));
        let log = self.dir.0.join(format!("daemon-{}.log", self.runs));
        self.daemon.insert(Daemon::spawn(cmd, log))
    }

    /// Starts the daemon and waits until it serves.
    pub fn start(&mut self) {
        self.spawn().wait_ready();
        wait_port(&format!("127.0.0.1:{}", self.port));
    }

    /// Stops the daemon (SIGTERM, drain), asserting a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            assert_eq!(d.stop(), Some(0), "{}", d.log_text());
        }
    }

    pub fn log(&self) -> String {
        self.daemon
            .as_ref()
            .map(Daemon::log_text)
            .unwrap_or_default()
    }

    /// A GET on the gateway's listener: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.get_keyed(path, None)
    }

    /// GET `path`, with subscription key `key` when given.
    pub fn get_keyed(&self, path: &str, key: Option<&str>) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        match key {
            Some(key) => curl(&["-H", &format!("Ocp-Apim-Subscription-Key: {key}"), &url]),
            None => curl(&[&url]),
        }
    }

    /// Polls `path` until `check` accepts the answer, up to `secs`;
    /// returns the last answer.
    pub fn wait_for(
        &self,
        path: &str,
        secs: u64,
        check: impl Fn(u16, &str) -> bool,
    ) -> (u16, String) {
        self.wait_keyed(path, None, secs, check)
    }

    /// `wait_for` with subscription key `key` on each request.
    pub fn wait_keyed(
        &self,
        path: &str,
        key: Option<&str>,
        secs: u64,
        check: impl Fn(u16, &str) -> bool,
    ) -> (u16, String) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (status, body) = self.get_keyed(path, key);
            if check(status, &body) || Instant::now() > deadline {
                return (status, body);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `/readyz` of the admin listener.
    pub fn readyz(&self) -> (u16, String) {
        curl(&[&format!("http://127.0.0.1:{}/readyz", self.admin_port)])
    }

    /// `edgegw status --json` of this node.
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_slice(&self.run_status(&["--json"])).unwrap()
    }

    /// `edgegw status` (text) of this node.
    pub fn status_text(&self) -> String {
        String::from_utf8_lossy(&self.run_status(&[])).into_owned()
    }

    /// The output of a successful `edgegw status` with `extra` arguments.
    fn run_status(&self, extra: &[&str]) -> Vec<u8> {
        let dir = self.runtime_dir.to_str().unwrap();
        let args: Vec<&str> = ["status", "--runtime-dir", dir]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        let out = edgegw(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Waits until the status file's control-plane view satisfies `check`.
    pub fn wait_status(
        &self,
        secs: u64,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.status();
            if check(&s["control_plane"]) || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Writes a backup generation as the gateway does (checksum line, then
    /// the bundle).
    pub fn write_backup(&self, version: u64, bundle: &str) -> PathBuf {
        std::fs::create_dir_all(&self.backup_dir).unwrap();
        let sum: String = Sha256::digest(bundle.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let path = self.backup_dir.join(format!("bundle-{version}.json"));
        std::fs::write(&path, format!("sha256:{sum}\n{bundle}")).unwrap();
        path
    }

    /// Backup generations on disk, newest first.
    pub fn backups(&self) -> Vec<u64> {
        let mut v: Vec<u64> = std::fs::read_dir(&self.backup_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix("bundle-")?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()
            })
            .collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v
    }
}

/// A bundle publishing `/hello` that answers `body` itself (return-response).
pub fn hello_bundle(version: u64, body: &str) -> String {
    format!(
        r#"{{"version": {version},
 "apis": [{{"name": "hello", "path": "/hello", "backend": "http://127.0.0.1:9"}}],
 "catalog": {{"apis": [{{"name": "hello", "subscription_required": false,
   "policies": {{"inbound": [{{"return-response": {{"status_code": 200, "body": "{body}"}}}}]}}}}]}}}}"#
    )
}

/// A control-plane API document: `path` answers `body` itself
/// (return-response), after the `inbound` policies given (JSON list).
pub fn api_doc(name: &str, path: &str, body: &str, before: serde_json::Value) -> serde_json::Value {
    let mut inbound = before.as_array().cloned().unwrap_or_default();
    inbound.push(serde_json::json!({"return-response": {"status_code": 200, "body": body}}));
    serde_json::json!({
        "name": name,
        "path": path,
        "backend": "http://127.0.0.1:9",
        "subscription_required": false,
        "policies": {"inbound": inbound},
    })
}

/// An admin write that must succeed (200 or 201); the answer's JSON.
pub fn admin_ok(
    cp: &crate::cp::ControlPlane,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let (status, answer) = cp.admin(method, path, Some(&body));
    assert!(
        status == 200 || status == 201,
        "{method} {path}: {status} {answer}"
    );
    answer
}

/// Imports a one-operation OpenAPI document as API `pets` at `/petstore`
/// (operation `get-pet`, `GET /pets/{id}`) forwarding to `backend`, and
/// creates subscription `sub-1` to it: its primary key.
pub fn import_pets_with_a_subscription(cp: &crate::cp::ControlPlane, backend: &str) -> String {
    const PETS: &str = r#"{"openapi": "3.0.3", "info": {"title": "pets", "version": "1"},
  "paths": {"/pets/{id}": {"get": {"operationId": "get-pet"}}}}"#;
    let import = cp.request(
        "POST",
        &format!("/v1/apis/import?name=pets&path=/petstore&backend=http://{backend}"),
        Some(&cp.admin_token),
        &["Content-Type: application/json"],
        Some(PETS.as_bytes()),
    );
    assert_eq!(import.status, 201, "{}", import.body);
    let sub = admin_ok(
        cp,
        "POST",
        "/v1/subscriptions",
        serde_json::json!({"id": "sub-1", "scope": "api:pets"}),
    );
    sub["primary_key"].as_str().unwrap().to_string()
}

/// Registers gateway `name` serving `apis` (and `dos_profile`); its token.
pub fn register(
    cp: &crate::cp::ControlPlane,
    name: &str,
    apis: &[&str],
    dos_profile: Option<&str>,
) -> String {
    let body = serde_json::json!({"name": name, "apis": apis, "dos_profile": dos_profile});
    let answer = admin_ok(cp, "POST", "/v1/gateways", body);
    answer["token"].as_str().expect("a token").to_string()
}

impl ManagedNode {
    /// A node of control plane `cp` with gateway token `token`.
    pub fn of(tag: &str, cp: &crate::cp::ControlPlane, token: &str, extra: &str) -> ManagedNode {
        ManagedNode::new(tag, &cp.url(), Some(cp.ca_file()), token, extra)
    }

    /// Waits until `/hello`-style `path` answers 200 with `body`.
    pub fn wait_body(&self, path: &str, body: &str, secs: u64) {
        let got = self.wait_for(path, secs, |s, b| s == 200 && b == body);
        assert_eq!(got, (200, body.to_string()), "{}", self.log());
    }
}
