//! `cargo xtask bench <target>`: measurements against a peer in the same run,
//! printed as ratios. Never part of `cargo xtask test`.

mod apim;
mod proxy;
mod xdp;

use anyhow::bail;

/// Runs the named benchmark.
pub fn run(target: &str, args: &[String]) -> anyhow::Result<()> {
    // Each benchmark adds an arm here: "xdp", "proxy", ...
    match target {
        "xdp" => xdp::run(args),
        "proxy" => proxy::run(args),
        "apim" => apim::run(args),
        other => bail!("unknown benchmark \"{other}\"; available: xdp, proxy, apim"),
    }
}
