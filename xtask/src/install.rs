//! `cargo xtask install [--prefix DIR] [--root DIR]`: builds, stages the same
//! files as `cargo xtask dist` and runs their `install.sh`, so a source tree
//! and a tarball install identically.

use std::process::Command;

use crate::{build, dist, root, setup};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    build::shipped()?;
    // Its own staging directory: a concurrent `dist` rewrites target/dist.
    let staged = dist::stage(&root().join("target/install-stage"))?;
    setup::run(Command::new(staged.join("install.sh")).args(args))
}
