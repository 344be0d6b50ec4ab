//! `cargo xtask image`: OCI images of `edgegw` and `edgegw-cp`, built
//! offline with Debian's podman from the same stripped binaries as the
//! tarball (`dist::stage`). No base image: each image is `FROM scratch` with
//! a root filesystem staged here (the binary, the shared libraries `ldd`
//! lists for it, passwd/group, nsswitch.conf, the CA bundle and the default
//! configuration for the gateway) and the recipe in
//! `deploy/container/<name>.Containerfile` (labels, user, health check).
//! Each image is saved with `podman save` as
//! `target/dist/<name>-image-<version>.tar` (docker-archive: `podman load`,
//! `docker load`, `ctr images import`), listed in SHA256SUMS.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::{build, checksums, debuginfo, dist, root, setup};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The control plane's user inside its image (numeric, so that Kubernetes'
/// `runAsNonRoot` can check it).
const CP_UID: u32 = 10001;

/// One image: its name (also the binary's) and what its root filesystem
/// holds beyond the binary and its libraries.
struct Image {
    name: &'static str,
    /// (source, path in the image) of extra files.
    files: Vec<(PathBuf, &'static str)>,
    /// Empty directories: (path, mode). Their owner is root: COPY gives
    /// everything to root; the Containerfile chowns what it must.
    dirs: &'static [(&'static str, u32)],
}

/// `localhost/<name>:<version>`, the tag `podman load` gives the archive.
pub fn tag(name: &str) -> String {
    format!("localhost/{name}:{VERSION}")
}

/// `target/dist/<name>-image-<version>.tar`.
pub fn archive(name: &str) -> PathBuf {
    root()
        .join("target/dist")
        .join(format!("{name}-image-{VERSION}.tar"))
}

pub fn run() -> anyhow::Result<()> {
    build::shipped()?;
    let stage = root().join("target/image");
    let bundle = dist::stage(&stage)?;
    let src = root();
    let images = [
        Image {
            name: "edgegw",
            files: vec![
                (src.join("dist/edgegw.toml"), "etc/edgegw/edgegw.toml"),
                (
                    src.join("docs/operator-guide.md"),
                    "usr/share/doc/edgegw/operator-guide.md",
                ),
                (ca_bundle()?, "etc/ssl/certs/ca-certificates.crt"),
            ],
            dirs: &[
                ("run/edgegw", 0o750),
                ("var/lib/edgegw", 0o750),
                ("tmp", 0o1777),
            ],
        },
        Image {
            name: "edgegw-cp",
            files: vec![],
            // var/lib/edgegw-cp comes from the Containerfile (its owner).
            dirs: &[
                ("etc/edgegw-cp/tls", 0o755),
                ("var/lib", 0o755),
                ("tmp", 0o1777),
            ],
        },
    ];
    std::fs::create_dir_all(root().join("target/dist"))?;
    let mut saved = Vec::new();
    for image in &images {
        let context = stage.join(format!("{}-context", image.name));
        rootfs(image, &bundle.join("bin").join(image.name), &context)?;
        build(image.name, &context)?;
        saved.push((save(image.name)?, archive(image.name)));
    }
    checksums::publish(&root().join("target/dist"), &saved)?;
    for image in &images {
        println!(
            "{}: image {}, archive {} ({})",
            tag(image.name),
            image_size(image.name)?,
            debuginfo::megabytes(&archive(image.name))?,
            archive(image.name).display()
        );
    }
    Ok(())
}

/// Stages `context/rootfs/` for `image`.
fn rootfs(image: &Image, bin: &Path, context: &Path) -> anyhow::Result<()> {
    if context.exists() {
        std::fs::remove_dir_all(context)
            .with_context(|| format!("removing {}", context.display()))?;
    }
    let fs = context.join("rootfs");
    copy(bin, &fs.join("usr/bin").join(image.name))?;
    for lib in shared_libraries(bin)? {
        let inside = lib.strip_prefix("/").expect("ldd prints absolute paths");
        copy(&lib, &fs.join(inside))?;
    }
    for (from, to) in &image.files {
        copy(from, &fs.join(to))?;
    }
    let write = |path: &str, text: String| -> anyhow::Result<()> {
        let path = fs.join(path);
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write(
        "etc/passwd",
        format!(
            "root:x:0:0:root:/root:/sbin/nologin\nedgegw-cp:x:{CP_UID}:{CP_UID}:edgegw control plane:/var/lib/edgegw-cp:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
        ),
    )?;
    write(
        "etc/group",
        format!("root:x:0:\nedgegw-cp:x:{CP_UID}:\nnogroup:x:65534:\n"),
    )?;
    // glibc (2.34 and later) has the files and dns modules built in.
    write(
        "etc/nsswitch.conf",
        "passwd: files\ngroup: files\nhosts: files dns\n".into(),
    )?;
    for (dir, mode) in image.dirs {
        let path = fs.join(dir);
        std::fs::create_dir_all(&path)?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(*mode))?;
    }
    // An empty directory for `COPY --chown` (the state directory of an
    // image whose process is not root).
    std::fs::create_dir_all(context.join("empty"))?;
    Ok(())
}

/// The shared libraries (and the dynamic loader) `ldd` lists for `bin`,
/// as absolute paths on this machine.
fn shared_libraries(bin: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(bin)
        .output()
        .context("running ldd (libc-bin)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "ldd {} failed: {}{}",
            bin.display(),
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_ldd(&text)
}

/// `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` and
/// `/lib64/ld-linux-x86-64.so.2 (0x...)` give their paths; the kernel's
/// vDSO has none.
fn parse_ldd(text: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("not found") {
            bail!("ldd: {line}: install the library, then build the image again");
        }
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(path));
        }
    }
    if libs.is_empty() {
        bail!("ldd listed no libraries: is the binary dynamically linked?");
    }
    Ok(libs)
}

/// Debian's CA bundle (package ca-certificates), for https:// backends
/// configured without a `ca_file`.
fn ca_bundle() -> anyhow::Result<PathBuf> {
    let path = PathBuf::from("/etc/ssl/certs/ca-certificates.crt");
    if !path.is_file() {
        bail!(
            "{} missing: install ca-certificates (`cargo xtask setup` does)",
            path.display()
        );
    }
    Ok(path)
}

fn build(name: &str, context: &Path) -> anyhow::Result<()> {
    let file = root()
        .join("deploy/container")
        .join(format!("{name}.Containerfile"));
    setup::run(
        Command::new("podman")
            .args(["build", "--quiet", "--pull=never", "--format", "docker"])
            .arg("--file")
            .arg(&file)
            .arg("--build-arg")
            .arg(format!("VERSION={VERSION}"))
            .arg("--build-arg")
            .arg(format!("REVISION={}", revision()))
            .arg("--build-arg")
            .arg(format!("SOURCE={}", source()))
            .arg("--tag")
            .arg(tag(name))
            .arg(context),
    )
    .with_context(|| format!("building the {name} image (podman; `cargo xtask setup` installs it)"))
}

/// Saves the image under a temporary name (published by the caller);
/// returns that file.
fn save(name: &str) -> anyhow::Result<PathBuf> {
    let partial = archive(name).with_extension("tar.partial");
    let _ = std::fs::remove_file(&partial);
    setup::run(
        Command::new("podman")
            .args(["save", "--quiet", "--format", "docker-archive", "--output"])
            .arg(&partial)
            .arg(tag(name)),
    )?;
    Ok(partial)
}

fn image_size(name: &str) -> anyhow::Result<String> {
    let out = Command::new("podman")
        .args(["image", "inspect", "--format", "{{.Size}}"])
        .arg(tag(name))
        .output()?;
    let bytes: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .with_context(|| format!("podman image inspect {}", tag(name)))?;
    Ok(format!("{:.1} MB", bytes / 1e6))
}

/// The commit the images are built from (`unknown` outside a git checkout).
fn revision() -> String {
    git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into())
}

/// Where the source lives: the checkout's origin, else its revision.
fn source() -> String {
    git(&["remote", "get-url", "origin"]).unwrap_or_else(|| format!("edgegw@{}", revision()))
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .current_dir(root())
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to.parent().expect("has a parent"))?;
    // Follows symlinks: the image gets the library itself under the name
    // the loader looks for.
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_libraries_and_the_loader() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
        let err = parse_ldd("\tlibfoo.so.1 => not found\n").unwrap_err();
        assert!(err.to_string().contains("libfoo.so.1 => not found"));
        assert!(parse_ldd("\tstatically linked\n").is_err());
    }
}
