//! The web console's front end (`console/`): `npm ci` from the lockfile
//! and `npm run build` (TypeScript check, then Vite) into `console/dist`,
//! which edgegw-cp embeds. Runs before edgegw-cp is compiled, so the
//! shipped binary carries the pages and the offline bundle needs no
//! Node.js. `cargo xtask bench console` reports each page's weight.

use std::{path::PathBuf, process::Command};

use anyhow::Context;

use crate::{root, setup};

pub fn dir() -> PathBuf {
    root().join("console")
}

/// Installs the locked dependencies when `node_modules` is missing or
/// older than the lockfile, then builds the pages.
pub fn build() -> anyhow::Result<()> {
    let dir = dir();
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&installed).is_none() || modified(&installed) < modified(&lock) {
        setup::run(
            Command::new("npm")
                .current_dir(&dir)
                .args(["ci", "--no-audit", "--no-fund"]),
        )
        .context("npm ci in console/ (cargo xtask setup installs Node.js and npm)")?;
    }
    let first = !dir.join("dist").exists();
    setup::run(Command::new("npm").current_dir(&dir).args(["run", "build"]))
        .context("building the web console (npm run build in console/)")?;
    if first {
        // Cargo tracks each embedded file, but not the folder's appearing:
        // an edgegw-cp compiled before it would otherwise stay without pages.
        let assets = root().join("control-plane/src/web/assets.rs");
        std::fs::File::open(&assets)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()))
            .with_context(|| format!("touching {}", assets.display()))?;
    }
    Ok(())
}

/// `cargo xtask bench console`: builds the pages, then for each page the
/// bytes of the JavaScript and CSS it loads, raw and gzip-compressed
/// (`gzip -9`, as a server or proxy compressing them would send them).
/// Target: under 300 KB compressed per page.
pub fn bench() -> anyhow::Result<()> {
    build()?;
    let dist = dir().join("dist");
    println!("page weight (JS + CSS each page loads):");
    for page in ["ui", "portal"] {
        let html = std::fs::read_to_string(dist.join(page).join("index.html"))
            .with_context(|| format!("reading console/dist/{page}/index.html"))?;
        let (mut raw, mut gz) = (0u64, 0u64);
        let mut files = Vec::new();
        for part in html.split(['"', '\'']) {
            if part.starts_with("/assets/") && (part.ends_with(".js") || part.ends_with(".css")) {
                files.push(part.to_string());
            }
        }
        files.sort();
        files.dedup();
        for f in &files {
            let path = dist.join(f.trim_start_matches('/'));
            raw += std::fs::metadata(&path)?.len();
            let out = Command::new("gzip")
                .args(["-9", "-c"])
                .arg(&path)
                .output()
                .context("running gzip")?;
            anyhow::ensure!(out.status.success(), "gzip {}: {:?}", path.display(), out);
            gz += out.stdout.len() as u64;
        }
        let verdict = if gz < 300 * 1024 { "under" } else { "OVER" };
        println!(
            "  /{page:<7} {} files  {:>7.1} KB raw  {:>6.1} KB gzip  ({verdict} the 300 KB target)",
            files.len(),
            raw as f64 / 1024.0,
            gz as f64 / 1024.0
        );
    }
    Ok(())
}
