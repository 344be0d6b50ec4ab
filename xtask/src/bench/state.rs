//! Runtime state under churn, measured by `tests/src/bin/state_bench.rs`
//! (the real `edgegw`, the test harness):
//!
//! - `cargo xtask bench spray [--sources N] [--duration SECS] [--rounds N]
//!   [--connections N]`: requests/s of a client-IP keyed rate limit with
//!   200000 distinct source addresses against the same with 10 (target
//!   >= 0.9x: a full key map evicts in O(1));
//! - `cargo xtask bench reload [--subscriptions N] [--rounds N]
//!   [--via file|cp|both]`: time and resident memory of applying a
//!   one-subscription change to a catalog of 100000 subscriptions (target
//!   under 50 ms): by SIGHUP after editing the node's file (a whole reload)
//!   and through the control plane (a delta).

pub fn run(mode: &str, args: &[String]) -> anyhow::Result<()> {
    let mut args = args.to_vec();
    args.insert(0, mode.to_string());
    super::harness_bin("state_bench", &args)
}
