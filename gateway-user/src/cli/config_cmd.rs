//! `edgegw config validate FILE`: the daemon's own validation, run on a file
//! without touching a running daemon.

use std::path::Path;

use crate::config::Config;

pub fn validate(file: &Path) -> anyhow::Result<()> {
    let config = Config::load(file)?;
    println!(
        "{}: valid: {} API(s), listen {}, XDP {} on {}",
        file.display(),
        config.apis.len(),
        config.listen,
        config.xdp_mode,
        config.iface
    );
    Ok(())
}
