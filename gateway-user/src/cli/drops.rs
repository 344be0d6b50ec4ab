//! `edgegw drops [--iface IFACE] [--json]`: reads the pinned counters, so it
//! works from any process while the daemon runs (or after it died).

use crate::datapath::{self, ReasonTotals};
use gateway_common::Reason;

pub fn drops(iface: Option<&str>, json: bool) -> anyhow::Result<()> {
    let dir = datapath::resolve_iface(iface)?;
    let counters = datapath::read_counters(&dir)?;
    if json {
        println!("{}", render_json(&dir.iface, &counters));
    } else {
        print!("{}", render_table(&dir.iface, &counters));
    }
    Ok(())
}

fn render_json(iface: &str, counters: &[(Reason, ReasonTotals)]) -> serde_json::Value {
    let reasons: serde_json::Map<String, serde_json::Value> = counters
        .iter()
        .map(|(r, t)| {
            (
                r.name().to_string(),
                serde_json::json!({ "packets": t.packets, "bytes": t.bytes }),
            )
        })
        .collect();
    serde_json::json!({ "iface": iface, "reasons": reasons })
}

fn render_table(iface: &str, counters: &[(Reason, ReasonTotals)]) -> String {
    let mut out = format!("interface {iface}\n");
    out.push_str(&format!(
        "{:<18} {:>14} {:>16}\n",
        "REASON", "PACKETS", "BYTES"
    ));
    for (reason, t) in counters {
        out.push_str(&format!(
            "{:<18} {:>14} {:>16}\n",
            reason.name(),
            t.packets,
            t.bytes
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_align_and_json_names_every_reason() {
        let counters: Vec<_> = Reason::ALL
            .iter()
            .map(|&r| {
                (
                    r,
                    ReasonTotals {
                        packets: r as u64 * 1000,
                        bytes: 7,
                    },
                )
            })
            .collect();
        let table = render_table("lo", &counters);
        let widths: Vec<usize> = table.lines().skip(1).map(str::len).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{table}");
        let json = render_json("lo", &counters);
        for r in Reason::ALL {
            assert_eq!(json["reasons"][r.name()]["bytes"], 7);
        }
        assert_eq!(json["reasons"]["malformed"]["packets"], 1000);
    }
}
