//! Shipped binaries without their debug information, which goes into a
//! separate file per binary: `objcopy --only-keep-debug` keeps the symbol
//! table and the line tables (the production profile's
//! `debug = "line-tables-only"`), `--strip-all` removes both from the
//! binary, and `--add-gnu-debuglink` records the debug file's name and CRC
//! so that gdb, perf and addr2line find it when it is installed beside the
//! binary or under /usr/lib/debug/<the binary's directory>/.

use std::{path::Path, process::Command};

use anyhow::Context;

use crate::setup;

/// Writes `bin` stripped to `stripped` and its debug information to
/// `debug` (whose file name the stripped binary records).
pub fn split(bin: &Path, stripped: &Path, debug: &Path) -> anyhow::Result<()> {
    for out in [stripped, debug] {
        let dir = out.parent().expect("has a parent");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    objcopy(
        Command::new("objcopy")
            .arg("--only-keep-debug")
            .arg(bin)
            .arg(debug),
    )?;
    objcopy(
        Command::new("objcopy")
            .arg("--strip-all")
            .arg(format!("--add-gnu-debuglink={}", debug.display()))
            .arg(bin)
            .arg(stripped),
    )
}

fn objcopy(cmd: &mut Command) -> anyhow::Result<()> {
    setup::run(cmd).context("objcopy (binutils; `cargo xtask setup` installs it)")
}

/// `<size> MB` with one decimal, for the packaging commands' summaries.
pub fn megabytes(path: &Path) -> anyhow::Result<String> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    Ok(format!("{:.1} MB", len as f64 / 1e6))
}
