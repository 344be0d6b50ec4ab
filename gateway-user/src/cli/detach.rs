//! `edgegw detach --iface IFACE`

use crate::datapath;

pub fn detach(iface: &str) -> anyhow::Result<()> {
    datapath::detach_pinned(iface)?;
    println!("detached edgegw from {iface} and removed its pins");
    Ok(())
}
