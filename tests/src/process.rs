//! The real `edgegw` binary as a child process.

use std::{
    io::Write,
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

/// The binary under test: `EDGEGW_BIN` (set by `cargo xtask test`), or the
/// production build in the workspace.
pub fn edgegw_bin() -> PathBuf {
    let bin = std::env::var_os("EDGEGW_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/production/edgegw")
        });
    assert!(
        bin.exists(),
        "{} missing: run the tests with `cargo xtask test`",
        bin.display()
    );
    bin
}

/// Runs `edgegw ARGS` to completion.
pub fn edgegw(args: &[&str]) -> Output {
    Command::new(edgegw_bin())
        .args(args)
        .output()
        .expect("running edgegw")
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir()
            .join(crate::netns::unique_name("egw").replace('x', &format!("-{tag}-")));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running daemon; on drop it gets SIGTERM, then SIGKILL after 5 s.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` (an edgegw invocation, maybe wrapped in nsenter) with its
    /// stderr captured to `log`.
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Daemon {
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("starting edgegw");
        Daemon { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the daemon logs that it is ready; panics with its log if it
    /// exits or takes longer than 20 s.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.log_text().contains("edgegw ready") {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "edgegw exited ({status}) before ready:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "edgegw not ready after 20 s:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `sig` (a `nix` `Signal`, or a signal number) to the
    /// daemon; a number that is no signal is a bug in the test.
    pub fn signal<S: TryInto<Signal, Error: std::fmt::Debug>>(&self, sig: S) {
        let sig = sig.try_into().expect("not a signal");
        // An exited but not yet reaped child still takes signals: no error.
        let _ = kill(Pid::from_raw(self.child.id() as i32), sig);
    }

    /// Sends SIGTERM and waits for exit, returning the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        self.signal(Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "edgegw did not exit within 15 s of SIGTERM:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal(Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if self.child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound then released).
///
/// Ports come from 20000-31999, below the kernel's ephemeral range
/// (32768-60999 by default): a port from that range can be taken between
/// this call and the daemon's bind by any outgoing connection of the tests
/// running in parallel (a curl, a backend's client). Each port is handed
/// out once per process, in turn from a start that differs per process.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id() % COUNT,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % COUNT) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}-{}", FIRST + COUNT - 1)
}

/// Waits until something accepts on `addr`.
pub fn wait_port(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listening on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts a failed command: non-zero exit and exactly one stderr line that
/// contains every `wanted` fragment (the CLI's "one clear line" contract).
pub fn assert_one_line_error(out: &Output, wanted: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected failure, got success: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    for w in wanted {
        assert!(lines[0].contains(w), "{w:?} not in {:?}", lines[0]);
    }
}

/// Runs `edgegw ARGS` (a `--json` read command), asserts success and parses
/// its output.
pub fn edgegw_json(args: &[&str]) -> serde_json::Value {
    let out = edgegw(args);
    assert!(
        out.status.success(),
        "edgegw {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("edgegw {args:?}: {e}"))
}
