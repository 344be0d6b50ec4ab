//! `cargo xtask test`: lints, then every test of the workspace against the
//! binaries just built (the production profile: what ships).

use crate::{
    build::{cargo, ebpf_object, edgegw_bin, edgegw_cp_bin},
    root, setup,
};

pub fn run(extra: &[String]) -> anyhow::Result<()> {
    // The canonical-path tests check the gateway against a real nginx.
    crate::bench::proxy::install_tools()?;
    setup::run(
        cargo()
            .current_dir(root())
            .args([
                "clippy",
                "--release",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])
            .env("EDGEGW_EBPF_OBJECT", ebpf_object()),
    )?;
    setup::run(
        cargo()
            .current_dir(root())
            .args(["test", "--release", "--workspace"])
            .args(extra)
            .env("EDGEGW_EBPF_OBJECT", ebpf_object())
            .env("EDGEGW_BIN", edgegw_bin())
            .env("EDGEGW_CP_BIN", edgegw_cp_bin()),
    )
}
