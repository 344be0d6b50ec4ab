//! `cargo xtask dist`: a self-contained tarball for x86_64 Linux nodes,
//! `target/dist/edgegw-<version>-x86_64-linux.tar.gz`, holding the binaries
//! (the XDP object is embedded in `edgegw`), the unit files, the production
//! default configuration, the operator guide and `install.sh`. Installing it
//! needs nothing but a shell and coreutils: no network.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::{build, root, setup};

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
    build::all()?;
    let out = root().join("target/dist");
    let staged = stage(&out)?;
    let tarball = out.join(format!("{}.tar.gz", bundle_name()));
    setup::run(
        Command::new("tar")
            .arg("-czf")
            .arg(&tarball)
            .arg("-C")
            .arg(&out)
            .arg("--owner=0")
            .arg("--group=0")
            .arg(staged.file_name().expect("named")),
    )?;
    println!("{}", tarball.display());
    Ok(())
}

/// Copies everything the bundle ships into `out/<bundle name>/` (replacing
/// an older staging directory) and returns that directory.
pub fn stage(out: &Path) -> anyhow::Result<PathBuf> {
    let dir = out.join(bundle_name());
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let src = root();
    let files: [(PathBuf, &str); 6] = [
        (build::edgegw_bin(), "bin/edgegw"),
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
    // `cargo xtask build` builds the control plane with the gateway.
    copy(&build::edgegw_cp_bin(), &dir.join("bin/edgegw-cp"))?;
    Ok(dir)
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to.parent().expect("has a parent"))?;
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}
