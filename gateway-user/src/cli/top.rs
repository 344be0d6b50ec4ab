//! `edgegw top [--iface IFACE] [--limit N] [--json]`: the sources with the
//! most dropped (then seen) packets, read from the pinned `SOURCES` map.

use crate::datapath;

pub fn top(iface: Option<&str>, limit: usize, json: bool) -> anyhow::Result<()> {
    let dir = datapath::resolve_iface(iface)?;
    let rows = datapath::top(&dir, limit)?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "iface": dir.iface, "sources": rows })
        );
        return Ok(());
    }
    println!("interface {}", dir.iface);
    println!("{:<44} {:>14} {:>14}", "SOURCE", "PACKETS", "DROPPED");
    for r in rows {
        println!("{:<44} {:>14} {:>14}", r.source, r.packets, r.dropped);
    }
    Ok(())
}
