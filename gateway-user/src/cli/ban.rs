//! `edgegw ban CIDR --for DURATION` and `edgegw unban CIDR`: write the
//! pinned ban tries directly, so they work while the daemon is stopped.

use anyhow::anyhow;

use crate::{
    config::parse_duration,
    datapath::{self, Cidr},
};

fn parse_cidr(s: &str) -> anyhow::Result<Cidr> {
    s.parse::<Cidr>().map_err(|e| anyhow!("CIDR: {e}"))
}

pub fn ban(iface: Option<&str>, cidr: &str, duration: &str) -> anyhow::Result<()> {
    let cidr = parse_cidr(cidr)?;
    let duration = parse_duration(duration).map_err(|e| anyhow!("--for: {e}"))?;
    let dir = datapath::resolve_iface(iface)?;
    datapath::ban(&dir, cidr, duration)?;
    println!("banned {cidr} on {} for {}s", dir.iface, duration.as_secs());
    Ok(())
}

pub fn unban(iface: Option<&str>, cidr: &str) -> anyhow::Result<()> {
    let cidr = parse_cidr(cidr)?;
    let dir = datapath::resolve_iface(iface)?;
    datapath::unban(&dir, cidr)?;
    println!("unbanned {cidr} on {}", dir.iface);
    Ok(())
}
