//! `cargo xtask dist`: a self-contained tarball for x86_64 Linux nodes,
//! `target/dist/edgegw-<version>-x86_64-linux.tar.gz`, holding the stripped
//! binaries (the XDP object is embedded in `edgegw`), the unit files, the
//! production default configuration, the operator guide and `install.sh`.
//! Installing it needs nothing but a shell and coreutils: no network.
//! Beside it: `edgegw-<version>-x86_64-linux-debug.tar.gz` with the
//! binaries' debug information (see `debuginfo`) and `SHA256SUMS`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::{build, checksums, debuginfo, root, setup};

const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn bundle_name() -> String {
    format!("edgegw-{VERSION}-x86_64-linux")
}

/// Builds, stages and packs; prints the tarball's path.
pub fn run() -> anyhow::Result<()> {
    if std::env::consts::ARCH != "x86_64" {
        bail!(
            "cargo xtask dist builds x86_64 bundles; this machine is {}",
            std::env::consts::ARCH
        );
    }
    build::shipped()?;
    let out = root().join("target/dist");
    let staged = stage(&out)?;
    let (tarball_partial, tarball) = pack(&out, &staged)?;
    let (debug_partial, debug) = pack(&out, &out.join(debug_name()))?;
    let sums = checksums::publish(
        &out,
        &[
            (tarball_partial, tarball.clone()),
            (debug_partial, debug.clone()),
        ],
    )?;
    for bin in ["edgegw", "edgegw-cp"] {
        println!(
            "{bin}: {} stripped, {} debug information",
            debuginfo::megabytes(&staged.join("bin").join(bin))?,
            debuginfo::megabytes(&out.join(debug_name()).join(format!("{bin}.debug")))?
        );
    }
    println!("{}", debug.display());
    println!("{}", sums.display());
    // Last: the tarball's path (scripts and the tests read the last line).
    println!("{}", tarball.display());
    Ok(())
}

/// The debug archive's directory name.
pub fn debug_name() -> String {
    format!("{}-debug", bundle_name())
}

/// Packs the directory `dir` in `out`, owned by root, into a temporary
/// file; returns it and its name to publish, `out/<dir's name>.tar.gz`.
fn pack(out: &Path, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let name = dir.file_name().expect("named").to_string_lossy();
    let tarball = out.join(format!("{name}.tar.gz"));
    let partial = out.join(format!("{name}.tar.gz.partial"));
    setup::run(
        Command::new("tar")
            .arg("-czf")
            .arg(&partial)
            .arg("-C")
            .arg(out)
            .arg("--owner=0")
            .arg("--group=0")
            .arg(&*name),
    )?;
    Ok((partial, tarball))
}

/// Copies everything the bundle ships into `out/<bundle name>/`, the
/// binaries stripped, and their debug information into
/// `out/<bundle name>-debug/` (replacing older staging directories);
/// returns the bundle's directory.
pub fn stage(out: &Path) -> anyhow::Result<PathBuf> {
    let dir = out.join(bundle_name());
    let debug = out.join(debug_name());
    for old in [&dir, &debug] {
        if old.exists() {
            std::fs::remove_dir_all(old).with_context(|| format!("removing {}", old.display()))?;
        }
    }
    for (bin, name) in [
        (build::edgegw_bin(), "edgegw"),
        (build::edgegw_cp_bin(), "edgegw-cp"),
    ] {
        debuginfo::split(
            &bin,
            &dir.join("bin").join(name),
            &debug.join(format!("{name}.debug")),
        )?;
    }
    let src = root();
    let files: [(PathBuf, &str); 5] = [
        (src.join("dist/install.sh"), "install.sh"),
        (src.join("dist/edgegw.toml"), "config/edgegw.toml"),
        (src.join("systemd/edgegw.service"), "systemd/edgegw.service"),
        (
            src.join("systemd/edgegw-cp.service"),
            "systemd/edgegw-cp.service",
        ),
        (src.join("docs/operator-guide.md"), "doc/operator-guide.md"),
    ];
    for (from, to) in files {
        copy(&from, &dir.join(to))?;
    }
    Ok(dir)
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to.parent().expect("has a parent"))?;
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}
