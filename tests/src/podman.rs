//! The images of `cargo xtask image`, run under Debian's podman.
//!
//! Two things of this kind of host are handled here rather than by hand:
//! podman runs containers with runc (`--runtime runc`: crun refuses a host
//! with hybrid cgroups), and each container gets the open-files and
//! processes limits this process has (`--ulimit`), since podman's defaults
//! are above what the host allows and runc then fails to set them.
//! Containers and volumes have unique names and are removed on drop.

use std::{
    path::PathBuf,
    process::{Command, Output},
    sync::OnceLock,
    time::{Duration, Instant},
};

use crate::{cp::cp_bin, netns::unique_name, process::edgegw_bin};

/// Why podman cannot run here, if it cannot. Outside CI a test calls
/// `skip_reason()` first and returns after printing it; in CI (`CI` set)
/// a missing podman fails the test instead.
pub fn skip_reason() -> Option<String> {
    static REASON: OnceLock<Option<String>> = OnceLock::new();
    let reason = REASON
        .get_or_init(|| {
            if !nix::unistd::geteuid().is_root() {
                return Some("the container tests run as root (XDP and /sys/fs/bpf)".into());
            }
            for tool in ["podman", "runc"] {
                let works = Command::new(tool)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success());
                if !works {
                    return Some(format!("{tool} is not installed: run `cargo xtask setup`"));
                }
            }
            None
        })
        .clone();
    if let Some(reason) = &reason {
        assert!(
            std::env::var_os("CI").is_none(),
            "container tests cannot run in CI: {reason}"
        );
        println!("skipped: {reason}");
    }
    reason
}

/// `podman --runtime runc ARGS`.
pub fn podman(args: &[&str]) -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", "runc"]).args(args);
    cmd
}

/// Runs podman to completion.
pub fn run(args: &[&str]) -> Output {
    podman(args)
        .output()
        .expect("running podman (cargo xtask setup installs it)")
}

/// Runs podman, panicking with its output on failure; its stdout.
pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "podman {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `podman run --rm <ulimits> ARGS` to completion (one-off commands such as
/// `admin-token create`).
pub fn run_once(args: &[&str]) -> Output {
    // No health check for a one-off command (podman would also try to
    // set up its timer through systemd, which this host may not run).
    let mut all: Vec<String> = vec!["run".into(), "--rm".into(), "--no-healthcheck".into()];
    all.extend(ulimits());
    all.extend(args.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    run(&refs)
}

/// Mounts bpffs at /sys/fs/bpf on the host if it is not there (as the
/// systemd unit's ExecStartPre does): containers get the host's with
/// `-v /sys/fs/bpf:/sys/fs/bpf`, so that pins outlive them.
pub fn ensure_host_bpffs() {
    let is_bpffs = nix::sys::statfs::statfs("/sys/fs/bpf")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC);
    if !is_bpffs {
        crate::netns::sh("mount", &["-t", "bpf", "bpf", "/sys/fs/bpf"]);
    }
}

/// `--ulimit` arguments: this process's own soft limits (which runc can
/// set), processes capped where podman's own limit sits.
pub fn ulimits() -> Vec<String> {
    use nix::sys::resource::{Resource, getrlimit};
    let soft = |r| getrlimit(r).map(|(soft, _)| soft).unwrap_or(4096);
    let files = soft(Resource::RLIMIT_NOFILE).min(1 << 20);
    let procs = soft(Resource::RLIMIT_NPROC).min(16_384);
    vec![
        "--ulimit".into(),
        format!("nofile={files}:{files}"),
        "--ulimit".into(),
        format!("nproc={procs}:{procs}"),
    ]
}

/// The two images, built once per test binary by `cargo xtask image` from
/// the binaries under test and loaded from its archives (so the archives
/// are what is tested). Returns (gateway image, control-plane image).
pub fn images() -> &'static (String, String) {
    static IMAGES: OnceLock<(String, String)> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(&workspace)
            .args(["xtask", "image"])
            .env("EDGEGW_BIN", edgegw_bin())
            .env("EDGEGW_CP_BIN", cp_bin())
            .output()
            .expect("running cargo xtask image");
        assert!(
            out.status.success(),
            "cargo xtask image failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let version = env!("CARGO_PKG_VERSION");
        let load = |name: &str| {
            let archive = workspace.join(format!("target/dist/{name}-image-{version}.tar"));
            let printed = ok(&["load", "--quiet", "--input", archive.to_str().unwrap()]);
            let tag = format!("localhost/{name}:{version}");
            assert!(printed.contains(&tag), "podman load printed {printed:?}");
            tag
        };
        (load("edgegw"), load("edgegw-cp"))
    })
}

/// A container started with `podman run -d`, removed (with `podman rm -f`)
/// on drop.
pub struct Container {
    pub name: String,
}

impl Container {
    /// `podman run -d --name <unique> <ulimits> ARGS` (ARGS end with the
    /// image and its arguments).
    pub fn run(args: &[&str]) -> Container {
        let name = unique_name("egwc");
        let mut all: Vec<String> = vec!["run".into(), "-d".into(), "--name".into(), name.clone()];
        all.extend(ulimits());
        all.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let container = Container { name };
        ok(&refs);
        container
    }

    /// What the container printed (stdout and stderr).
    pub fn logs(&self) -> String {
        let out = run(&["logs", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// `podman inspect --format FORMAT`.
    pub fn inspect(&self, format: &str) -> String {
        ok(&["inspect", "--format", format, &self.name])
            .trim()
            .to_string()
    }

    pub fn running(&self) -> bool {
        self.inspect("{{.State.Running}}") == "true"
    }

    /// Waits until the logs contain `line`; panics with them if the
    /// container exits first or 30 s pass.
    pub fn wait_log(&self, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let logs = self.logs();
            if logs.contains(line) {
                return;
            }
            assert!(
                self.running(),
                "container {} exited before printing {line:?}:\n{logs}",
                self.name
            );
            assert!(
                Instant::now() < deadline,
                "{line:?} not printed within 30 s:\n{logs}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the container to exit on its own; its exit code.
    pub fn wait_exit(&self) -> i32 {
        let code = ok(&["wait", &self.name]);
        code.trim()
            .parse()
            .unwrap_or_else(|_| panic!("podman wait printed {code:?}"))
    }

    /// `podman stop` (SIGTERM, then SIGKILL after `secs`); the exit code.
    pub fn stop(&self, secs: u32) -> i32 {
        ok(&["stop", "--time", &secs.to_string(), &self.name]);
        self.inspect("{{.State.ExitCode}}")
            .parse()
            .expect("an exit code")
    }

    /// `podman healthcheck run`: true when the image's health check passes.
    pub fn healthy(&self) -> bool {
        run(&["healthcheck", "run", &self.name]).status.success()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = run(&["rm", "--force", "--time", "5", &self.name]);
    }
}

/// A named volume, removed on drop.
pub struct Volume {
    pub name: String,
}

impl Volume {
    pub fn new() -> Volume {
        let name = unique_name("egwv");
        ok(&["volume", "create", &name]);
        Volume { name }
    }
}

impl Volume {
    /// Where the volume's files are on the host.
    pub fn mountpoint(&self) -> PathBuf {
        PathBuf::from(
            ok(&[
                "volume",
                "inspect",
                "--format",
                "{{.Mountpoint}}",
                &self.name,
            ])
            .trim(),
        )
    }
}

impl Default for Volume {
    fn default() -> Self {
        Volume::new()
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = run(&["volume", "rm", "--force", &self.name]);
    }
}
