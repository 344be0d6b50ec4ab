//! Building the XDP object and the binaries that embed it.

use std::{os::unix::process::CommandExt, path::PathBuf, process::Command};

use anyhow::Context;

use crate::{root, setup};

/// Where `build-ebpf` writes the object; gateway-user's build.rs reads it.
pub fn ebpf_object() -> PathBuf {
    root().join("target/bpf/bpfel-unknown-none/release/gateway-ebpf")
}

/// The profile of the shipped binaries (see the workspace Cargo.toml).
pub const PROFILE: &str = "production";

/// The shipped build, or the one EDGEGW_BIN names (benchmarks of another
/// build, e.g. a baseline).
pub fn edgegw_bin() -> PathBuf {
    std::env::var_os("EDGEGW_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target").join(PROFILE).join("edgegw"))
}

/// The shipped control plane, or the one EDGEGW_CP_BIN names.
pub fn edgegw_cp_bin() -> PathBuf {
    std::env::var_os("EDGEGW_CP_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target").join(PROFILE).join("edgegw-cp"))
}

/// Builds the shipped binaries, unless EDGEGW_BIN and EDGEGW_CP_BIN both
/// name builds to package instead (as the benchmarks do): the packaging
/// commands then take those as they are, without the PGO build.
pub fn shipped() -> anyhow::Result<()> {
    let given = |var: &str| std::env::var_os(var).is_some();
    match (given("EDGEGW_BIN"), given("EDGEGW_CP_BIN")) {
        (true, true) => {
            for bin in [edgegw_bin(), edgegw_cp_bin()] {
                anyhow::ensure!(
                    bin.is_file(),
                    "{} (from EDGEGW_BIN / EDGEGW_CP_BIN) does not exist; unset both to build",
                    bin.display()
                );
            }
            println!(
                "packaging {} and {} as given (EDGEGW_BIN, EDGEGW_CP_BIN): not building",
                edgegw_bin().display(),
                edgegw_cp_bin().display()
            );
            Ok(())
        }
        (false, false) => all(),
        _ => anyhow::bail!(
            "set both EDGEGW_BIN and EDGEGW_CP_BIN to package given builds, or neither to build them"
        ),
    }
}

pub fn ebpf() -> anyhow::Result<()> {
    let path = std::env::join_paths(std::iter::once(setup::bpf_linker_root().join("bin")).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))?;
    setup::run(
        cargo()
            .current_dir(root().join("gateway-ebpf"))
            .args([
                "build",
                "--release",
                "--target",
                "bpfel-unknown-none",
                "-Z",
                "build-std=core",
            ])
            .arg("--target-dir")
            .arg(root().join("target/bpf"))
            .env("PATH", path)
            // build-std needs nightly features; the pinned stable allows them
            // with RUSTC_BOOTSTRAP rather than a second toolchain.
            .env("RUSTC_BOOTSTRAP", "1")
            .env(
                "CARGO_ENCODED_RUSTFLAGS",
                "-Cdebuginfo=2\x1f-Clink-arg=--btf",
            ),
    )
    .context("building the XDP program")
}

/// The web console's pages, the XDP object, then edgegw and edgegw-cp optimised with a profile of
/// edgegw under a training load (see `pgo`).
pub fn all() -> anyhow::Result<()> {
    // The pages edgegw-cp embeds, before it is compiled.
    crate::console::build()?;
    ebpf()?;
    let profile = crate::pgo::profile()?;
    setup::run(
        cargo()
            .current_dir(root())
            .args([
                "build",
                "--profile",
                PROFILE,
                "-p",
                "gateway-user",
                "-p",
                "edgegw-cp",
            ])
            .env("EDGEGW_EBPF_OBJECT", ebpf_object())
            .env(
                "CARGO_ENCODED_RUSTFLAGS",
                format!("-Cprofile-use={}", profile.display()),
            ),
    )
    .context("building edgegw and edgegw-cp")
}

/// Replaces this process with the daemon so that signals reach it directly.
pub fn exec_edgegw(args: &[String]) -> anyhow::Result<()> {
    let err = Command::new(edgegw_bin())
        .current_dir(root())
        .args(["run", "--config", "config/edgegw.toml"])
        .args(args)
        .exec();
    Err(err).context("starting edgegw")
}

/// A cargo command that does not inherit the outer `cargo run`'s package
/// environment.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        if let Some(k) = key.to_str()
            && (k.starts_with("CARGO_PKG_")
                || k == "CARGO_MANIFEST_DIR"
                || k == "CARGO_PRIMARY_PACKAGE")
        {
            cmd.env_remove(k);
        }
    }
    cmd
}
