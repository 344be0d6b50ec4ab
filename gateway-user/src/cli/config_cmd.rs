//! `edgegw config validate FILE`: the daemon's own validation, run on a file
//! without touching a running daemon.

use std::path::Path;

use crate::config::Config;

pub fn validate(file: &Path) -> anyhow::Result<()> {
    let config = Config::load(file)?;
    // Certificates, keys, client CAs and CRLs: read and checked as a start would.
    if let Some(tls) = &config.tls {
        crate::tls::server_config(tls)?;
    }
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
