//! `cargo xtask bench <target>`: measurements against a peer in the same run,
//! printed as ratios. Never part of `cargo xtask test`.

use anyhow::bail;

/// Runs the named benchmark.
pub fn run(target: &str, _args: &[String]) -> anyhow::Result<()> {
    // Each benchmark adds an arm here: "xdp", "proxy", ...
    #[expect(clippy::match_single_binding, reason = "arms are added per benchmark")]
    match target {
        other => bail!("unknown benchmark \"{other}\"; available: (none yet)"),
    }
}
