//! `cargo xtask bench xdp`: the XDP fast path's per-packet cost against an
//! empty program, and its drop rate against nftables on a veth pair. The
//! measurement itself is `tests/src/bin/xdp_bench.rs`, which shares the
//! test harness (namespaces, the real daemon, packet builders).

use crate::setup;

/// Only the benchmark needs these: the nftables peer, and ethtool to turn
/// on GRO so a veth without XDP accepts XDP_TX frames.
const BENCH_PACKAGES: &[&str] = &["nftables", "ethtool"];

pub fn run(args: &[String]) -> anyhow::Result<()> {
    setup::ensure_packages(BENCH_PACKAGES)?;
    super::harness_bin("xdp_bench", args)
}
