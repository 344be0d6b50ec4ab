//! `cargo xtask deb`: `target/dist/edgegw_<version>_amd64.deb`, built with
//! Debian's own `dpkg-deb` from a tree laid out by the tarball's
//! `install.sh --root STAGE --prefix /usr`, so that the package and the
//! tarball install the same binaries (stripped), configuration and units at
//! the same FHS paths; only the units move to /lib/systemd/system, where
//! packages put theirs. /etc/edgegw/edgegw.toml is a conffile (an edited one
//! survives upgrades); the maintainer scripts create the system users and
//! reload systemd, and honour DPKG_ROOT (installs into another root).

use std::{path::Path, process::Command};

use anyhow::Context;

use crate::{build, checksums, debuginfo, dist, root, setup};

const VERSION: &str = env!("CARGO_PKG_VERSION");

const CONTROL: &str = "Package: edgegw
Version: @VERSION@
Architecture: amd64
Maintainer: edgegw maintainers <edgegw@localhost>
Section: net
Priority: optional
Depends: libc6 (>= 2.34), libgcc-s1, adduser
Recommends: ca-certificates
Description: API gateway with an XDP DoS fast path
 edgegw publishes, secures, meters and observes APIs on premises and at the
 edge, with an XDP program that drops abusive traffic per source before it
 reaches the proxy. Includes the control plane edgegw-cp.
";

const POSTINST: &str = r#"#!/bin/sh
# Creates the system users, gives them their directories, reloads systemd.
# Under DPKG_ROOT (an install into another root) only the files are set up.
set -e
[ "$1" = configure ] || exit 0
if [ -z "${DPKG_ROOT:-}" ]; then
    adduser --system --group --no-create-home --home /var/lib/edgegw --quiet edgegw
    adduser --system --group --no-create-home --home /var/lib/edgegw-cp --quiet edgegw-cp
    chown -R edgegw:edgegw /etc/edgegw /var/lib/edgegw
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        echo "edgegw: set xdp.iface and your APIs in /etc/edgegw/edgegw.toml, then: systemctl enable --now edgegw"
    fi
fi
exit 0
"#;

const PRERM: &str = r#"#!/bin/sh
# Stops the services before their binaries go. The XDP program stays
# pinned and enforcing (the production default); `edgegw detach --iface
# IFACE` before removal takes it off.
set -e
if [ "$1" = remove ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl stop edgegw.service edgegw-cp.service || true
fi
exit 0
"#;

const POSTRM: &str = r#"#!/bin/sh
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
exit 0
"#;

/// The package's path.
pub fn package() -> std::path::PathBuf {
    root()
        .join("target/dist")
        .join(format!("edgegw_{VERSION}_amd64.deb"))
}

pub fn run() -> anyhow::Result<()> {
    build::shipped()?;
    let work = root().join("target/deb");
    let bundle = dist::stage(&work)?;
    let tree = work.join("tree");
    if tree.exists() {
        std::fs::remove_dir_all(&tree).with_context(|| format!("removing {}", tree.display()))?;
    }
    std::fs::create_dir_all(&tree)?;
    setup::run(
        Command::new(bundle.join("install.sh"))
            .arg("--root")
            .arg(&tree)
            .args(["--prefix", "/usr"]),
    )?;
    let units = tree.join("lib/systemd/system");
    std::fs::create_dir_all(&units)?;
    for unit in ["edgegw.service", "edgegw-cp.service"] {
        std::fs::rename(tree.join("etc/systemd/system").join(unit), units.join(unit))
            .with_context(|| format!("moving {unit} to /lib/systemd/system"))?;
    }
    for empty in ["etc/systemd/system", "etc/systemd"] {
        std::fs::remove_dir(tree.join(empty))?;
    }
    let debian = tree.join("DEBIAN");
    std::fs::create_dir_all(&debian)?;
    write(
        &debian.join("control"),
        &CONTROL.replace("@VERSION@", VERSION),
        0o644,
    )?;
    write(
        &debian.join("conffiles"),
        "/etc/edgegw/edgegw.toml\n",
        0o644,
    )?;
    write(&debian.join("postinst"), POSTINST, 0o755)?;
    write(&debian.join("prerm"), PRERM, 0o755)?;
    write(&debian.join("postrm"), POSTRM, 0o755)?;
    let deb = package();
    std::fs::create_dir_all(deb.parent().expect("has a parent"))?;
    // Built under another name, then published with SHA256SUMS.
    let partial = deb.with_extension("deb.partial");
    setup::run(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&tree)
            .arg(&partial),
    )
    .context("dpkg-deb (package dpkg)")?;
    checksums::publish(
        deb.parent().expect("has a parent"),
        &[(partial, deb.clone())],
    )?;
    println!("{}: {}", deb.display(), debuginfo::megabytes(&deb)?);
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    Ok(())
}
