//! `edgegw drops [--iface IFACE] [--json] [--watch SECS]`: reads the pinned
//! counters, so it works from any process while the daemon runs (or after
//! it died). With `--watch`, prints again every SECS seconds with rates.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use crate::datapath::{self, ReasonTotals};
use gateway_common::Reason;

pub fn drops(iface: Option<&str>, json: bool, watch: Option<u64>) -> anyhow::Result<()> {
    if watch == Some(0) {
        anyhow::bail!("--watch: the interval must be at least 1 second");
    }
    let dir = datapath::resolve_iface(iface)?;
    let Some(secs) = watch else {
        let counters = datapath::read_counters(&dir)?;
        if json {
            println!("{}", render_json(&dir.iface, &counters, None));
        } else {
            print!("{}", render_table(&dir.iface, &counters, None));
        }
        return Ok(());
    };
    let mut previous = (Instant::now(), datapath::read_counters(&dir)?);
    loop {
        std::thread::sleep(Duration::from_secs(secs));
        let now = (Instant::now(), datapath::read_counters(&dir)?);
        let elapsed = now.0.duration_since(previous.0).as_secs_f64();
        let rates: Vec<(f64, f64)> = now
            .1
            .iter()
            .zip(&previous.1)
            .map(|((_, n), (_, p))| {
                (
                    n.packets.saturating_sub(p.packets) as f64 / elapsed,
                    n.bytes.saturating_sub(p.bytes) as f64 / elapsed,
                )
            })
            .collect();
        let out = if json {
            format!("{}\n", render_json(&dir.iface, &now.1, Some(&rates)))
        } else {
            format!("{}\n", render_table(&dir.iface, &now.1, Some(&rates)))
        };
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`| head`) ends the watch.
        if stdout
            .write_all(out.as_bytes())
            .and_then(|_| stdout.flush())
            .is_err()
        {
            return Ok(());
        }
        previous = now;
    }
}

/// Rates per reason, in counter order: (packets/s, bytes/s).
type Rates<'a> = Option<&'a [(f64, f64)]>;

fn render_json(
    iface: &str,
    counters: &[(Reason, ReasonTotals)],
    rates: Rates,
) -> serde_json::Value {
    let reasons: serde_json::Map<String, serde_json::Value> = counters
        .iter()
        .enumerate()
        .map(|(i, (r, t))| {
            let mut v = serde_json::json!({ "packets": t.packets, "bytes": t.bytes });
            if let Some(rates) = rates {
                v["packets_per_sec"] = rates[i].0.round().into();
                v["bytes_per_sec"] = rates[i].1.round().into();
            }
            (r.name().to_string(), v)
        })
        .collect();
    serde_json::json!({ "iface": iface, "reasons": reasons })
}

fn render_table(iface: &str, counters: &[(Reason, ReasonTotals)], rates: Rates) -> String {
    let mut out = format!("interface {iface}\n");
    out.push_str(&format!(
        "{:<18} {:>14} {:>16}",
        "REASON", "PACKETS", "BYTES"
    ));
    if rates.is_some() {
        out.push_str(&format!(" {:>12} {:>14}", "PKT/S", "BYTES/S"));
    }
    out.push('\n');
    for (i, (reason, t)) in counters.iter().enumerate() {
        out.push_str(&format!(
            "{:<18} {:>14} {:>16}",
            reason.name(),
            t.packets,
            t.bytes
        ));
        if let Some(rates) = rates {
            out.push_str(&format!(" {:>12.0} {:>14.0}", rates[i].0, rates[i].1));
        }
        out.push('\n');
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
        let table = render_table("lo", &counters, None);
        let widths: Vec<usize> = table.lines().skip(1).map(str::len).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{table}");
        let rates = vec![(1.0, 2.0); counters.len()];
        let watched = render_table("lo", &counters, Some(&rates));
        let widths: Vec<usize> = watched.lines().skip(1).map(str::len).collect();
        assert!(widths.windows(2).all(|w| w[0] == w[1]), "{watched}");
        assert_eq!(
            render_json("lo", &counters, Some(&rates))["reasons"]["denied"]["bytes_per_sec"],
            2.0
        );
        let json = render_json("lo", &counters, None);
        for r in Reason::ALL {
            assert_eq!(json["reasons"][r.name()]["bytes"], 7);
        }
        assert_eq!(json["reasons"]["malformed"]["packets"], 1000);
    }
}
