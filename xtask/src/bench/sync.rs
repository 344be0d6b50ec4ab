//! `cargo xtask bench sync [--changes N] [--gateways N] [--hold-secs N]`:
//! how fast a management API write is enforced on a gateway (p50/p99
//! against the managed product's 10 s poll), and the control plane's
//! memory and CPU with many gateways long-polling. The measurement is
//! `tests/src/bin/sync_bench.rs`, which shares the test harness (the real
//! `edgegw-cp` and `edgegw`, a managed node).

use crate::{
    build::{cargo, ebpf_object, edgegw_bin, edgegw_cp_bin},
    root, setup,
};

pub fn run(args: &[String]) -> anyhow::Result<()> {
    setup::run(
        cargo()
            .current_dir(root())
            .args([
                "run",
                "--release",
                "--quiet",
                "-p",
                "edgegw-tests",
                "--bin",
                "sync_bench",
                "--",
            ])
            .args(args)
            .env("EDGEGW_EBPF_OBJECT", ebpf_object())
            .env("EDGEGW_BIN", edgegw_bin())
            .env("EDGEGW_CP_BIN", edgegw_cp_bin()),
    )
}
