//! `edgegw bans [--iface IFACE] [--json]`: the active temporary bans.

use crate::datapath;

pub fn bans(iface: Option<&str>, json: bool) -> anyhow::Result<()> {
    let dir = datapath::resolve_iface(iface)?;
    let bans = datapath::list_bans(&dir)?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "iface": dir.iface, "bans": bans })
        );
        return Ok(());
    }
    println!("interface {}", dir.iface);
    println!("{:<44} {:>16}", "CIDR", "EXPIRES IN (S)");
    for b in bans {
        println!("{:<44} {:>16}", b.cidr, b.expires_in_secs);
    }
    Ok(())
}
