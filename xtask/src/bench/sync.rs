//! `cargo xtask bench sync [--changes N] [--gateways N] [--hold-secs N]
//! [--store sqlite|postgres]`: how fast a management API write is
//! enforced on a gateway (p50/p99 against the managed product's 10 s
//! poll), and the control plane's memory and CPU with many gateways
//! long-polling, on SQLite (default) or a private PostgreSQL server. The measurement is
//! `tests/src/bin/sync_bench.rs`, which shares the test harness (the real
//! `edgegw-cp` and `edgegw`, a managed node).

pub fn run(args: &[String]) -> anyhow::Result<()> {
    super::harness_bin("sync_bench", args)
}
