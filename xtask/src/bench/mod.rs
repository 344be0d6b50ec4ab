//! `cargo xtask bench <target>`: measurements against a peer in the same run,
//! printed as ratios. Never part of `cargo xtask test`.

mod apim;
mod choose;
mod proxy;
mod sync;
mod xdp;

use anyhow::bail;

/// Runs the named benchmark.
pub fn run(target: &str, args: &[String]) -> anyhow::Result<()> {
    // Each benchmark adds an arm here: "xdp", "proxy", ...
    match target {
        "xdp" => xdp::run(args),
        "proxy" => proxy::run(args),
        "choose" => choose::run(args),
        // Kept as an alias: the apim scenario of `bench proxy` and the
        // catalog's memory and load time.
        "apim" => {
            let mut args = args.to_vec();
            args.extend(["--only".to_string(), "apim".to_string()]);
            proxy::run(&args)
        }
        "sync" => sync::run(args),
        other => bail!("unknown benchmark \"{other}\"; available: xdp, proxy, apim, choose, sync"),
    }
}
