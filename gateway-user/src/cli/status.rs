//! `edgegw status [--json]`: what the daemon wrote in its status file, checked
//! against its pid, plus the live XDP program id and counters read from the
//! pins (so the drop totals are current even if the daemon hangs).

use std::path::Path;

use aya::programs::links::{FdLink, PinnedLink};
use gateway_common::Reason;
use serde_json::{Value, json};

use crate::{
    datapath::{self, ReasonTotals},
    status::{self, Status},
};

pub fn status(runtime_dir: &Path, json_out: bool) -> anyhow::Result<()> {
    let status = status::read(runtime_dir)?;
    let view = view(&status, status::now_secs());
    if json_out {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", render_text(&view));
    }
    Ok(())
}

/// The status file plus uptime and the live XDP data.
fn view(status: &Status, now: u64) -> Value {
    let mut view = serde_json::to_value(status).expect("status serialises");
    view["uptime_secs"] = json!(now.saturating_sub(status.started_at));
    if let Some(xdp) = &status.xdp {
        view["xdp"] = live_xdp(&xdp.iface, &xdp.mode);
    }
    view
}

fn live_xdp(iface: &str, mode: &str) -> Value {
    let mut out = json!({ "iface": iface, "mode": mode });
    let dir = match datapath::resolve_iface(Some(iface)) {
        Ok(dir) => dir,
        Err(err) => {
            out["error"] = json!(err.to_string());
            return out;
        }
    };
    match PinnedLink::from_pin(dir.link()).map(FdLink::from) {
        Ok(link) => match link.info() {
            Ok(info) => out["program_id"] = json!(info.program_id()),
            Err(err) => out["error"] = json!(format!("reading the XDP link: {err}")),
        },
        Err(err) => out["error"] = json!(format!("opening the XDP link: {err}")),
    }
    match datapath::read_counters(&dir) {
        Ok(counters) => out["totals"] = totals(&counters),
        Err(err) => out["error"] = json!(err.to_string()),
    }
    out
}

/// Passed and dropped packets/bytes summed over reasons.
fn totals(counters: &[(Reason, ReasonTotals)]) -> Value {
    let sum = |pass: bool| {
        counters
            .iter()
            .filter(|(r, _)| r.is_pass() == pass)
            .fold((0u64, 0u64), |(p, b), (_, t)| (p + t.packets, b + t.bytes))
    };
    let (passed, passed_bytes) = sum(true);
    let (dropped, dropped_bytes) = sum(false);
    json!({
        "passed": { "packets": passed, "bytes": passed_bytes },
        "dropped": { "packets": dropped, "bytes": dropped_bytes },
    })
}

fn render_text(v: &Value) -> String {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<12} {v}\n"));
    line(
        "state",
        format!("{} (pid {})", s(&v["state"]), s(&v["pid"])),
    );
    line("version", s(&v["version"]));
    line("uptime", format!("{}s", s(&v["uptime_secs"])));
    line(
        "config",
        format!(
            "{} (source {}, version {})",
            s(&v["config"]["path"]),
            s(&v["config"]["source"]),
            s(&v["config"]["version"])
        ),
    );
    let sync = &v["last_sync"];
    line(
        "last sync",
        format!(
            "{} at {}: {}",
            if sync["ok"] == true { "ok" } else { "failed" },
            s(&sync["at"]),
            s(&sync["message"])
        ),
    );
    for l in v["listeners"].as_array().into_iter().flatten() {
        line("listener", format!("{} {}", s(&l["addr"]), s(&l["name"])));
    }
    let xdp = &v["xdp"];
    if xdp.is_null() {
        line("xdp", "off".into());
    } else {
        line(
            "xdp",
            format!(
                "{} mode {} program {}",
                s(&xdp["iface"]),
                s(&xdp["mode"]),
                s(&xdp["program_id"])
            ),
        );
        let t = &xdp["totals"];
        if !t.is_null() {
            line(
                "passed",
                format!(
                    "{} packets, {} bytes",
                    t["passed"]["packets"], t["passed"]["bytes"]
                ),
            );
            line(
                "dropped",
                format!(
                    "{} packets, {} bytes",
                    t["dropped"]["packets"], t["dropped"]["bytes"]
                ),
            );
        }
        if !xdp["error"].is_null() {
            line("xdp error", s(&xdp["error"]));
        }
    }
    line("log level", s(&v["log_level"]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_split_passed_from_dropped() {
        let counters: Vec<_> = Reason::ALL
            .iter()
            .map(|&r| {
                (
                    r,
                    ReasonTotals {
                        packets: 1 + r as u64,
                        bytes: 100,
                    },
                )
            })
            .collect();
        let t = totals(&counters);
        assert_eq!(t["passed"]["packets"], 1);
        // reasons 1..=8 dropped: 2 + 3 + ... + 9
        assert_eq!(t["dropped"]["packets"], 44);
        assert_eq!(t["dropped"]["bytes"], 800);
    }
}
