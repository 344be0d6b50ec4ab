//! Network namespaces and veth pairs with unique names and RAII cleanup.

use std::{
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call, short enough for an interface
/// (at most 15 bytes): `<prefix><pid mod 10^5><counter>`.
pub fn unique_name(prefix: &str) -> String {
    assert!(
        prefix.len() <= 6,
        "prefix {prefix:?} too long for an interface name"
    );
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}x{n}", std::process::id() % 100_000)
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program}: {e} (is it installed? `cargo xtask setup`)")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted by name on drop.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new(prefix: &str) -> NetNs {
        let name = unique_name(prefix);
        sh("ip", &["netns", "add", &name]);
        let ns = NetNs { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Path for `nsenter --net=`; unlike `ip netns exec`, nsenter keeps the
    /// mount namespace, so /sys/fs/bpf stays visible.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// A command that runs `argv` inside this namespace.
    pub fn command(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.path()))
            .arg("--")
            .args(argv);
        cmd
    }

    /// Runs `argv` inside the namespace and returns its stdout; panics on failure.
    pub fn exec(&self, argv: &[&str]) -> String {
        let mut all = vec![format!("--net={}", self.path()), "--".into()];
        all.extend(argv.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        sh("nsenter", &refs)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A veth pair between two namespaces with IPv4 addresses on a /24.
/// Deleting one end (by name, in its namespace) deletes both.
pub struct Veth {
    pub a: String,
    pub b: String,
    pub a_ip: String,
    pub b_ip: String,
    ns_a: String,
}

impl Veth {
    /// Creates `a` in `ns_a` with 10.200.0.1 and `b` in `ns_b` with
    /// 10.200.0.2; each test has its own namespaces so addresses never clash.
    pub fn new(ns_a: &NetNs, ns_b: &NetNs) -> Veth {
        let a = unique_name("va");
        let b = unique_name("vb");
        sh(
            "ip",
            &[
                "link", "add", &a, "netns", &ns_a.name, "type", "veth", "peer", "name", &b,
                "netns", &ns_b.name,
            ],
        );
        let veth = Veth {
            a,
            b,
            a_ip: "10.200.0.1".into(),
            b_ip: "10.200.0.2".into(),
            ns_a: ns_a.name.clone(),
        };
        ns_a.exec(&["ip", "addr", "add", "10.200.0.1/24", "dev", &veth.a]);
        ns_a.exec(&["ip", "link", "set", &veth.a, "up"]);
        ns_b.exec(&["ip", "addr", "add", "10.200.0.2/24", "dev", &veth.b]);
        ns_b.exec(&["ip", "link", "set", &veth.b, "up"]);
        veth
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // edgegw keeps its pins on exit by design; a test's interfaces must
        // not leave any behind, whatever the test configured.
        for end in [&self.a, &self.b] {
            drop(crate::pins::PinGuard::new(end));
        }
        // Usually gone with its namespace already; delete by name in case not.
        let _ = Command::new("ip")
            .args(["-n", &self.ns_a, "link", "del", &self.a])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

impl NetNs {
    /// Runs `f` on a thread that has joined this namespace (setns affects
    /// only the calling thread), and returns its result.
    pub fn run_in<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.path();
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns {path}: {e}"));
            f()
        })
        .join()
        .expect("thread in namespace panicked")
    }
}
