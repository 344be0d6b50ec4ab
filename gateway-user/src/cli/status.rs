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
    let view = view(&status, crate::clock::now_secs());
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
    view["now"] = json!(now);
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
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<13} {v}\n"));
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
        "last reload",
        format!(
            "{} {}: {}",
            if sync["ok"] == true { "ok" } else { "failed" },
            ago(&sync["at"], &v["now"]),
            s(&sync["message"])
        ),
    );
    let cp = &v["control_plane"];
    if !cp.is_null() {
        line("control plane", s(&cp["url"]));
        line(
            "cp version",
            format!("{} (from {})", s(&cp["version"]), s(&cp["source"])),
        );
        line("last sync", ago(&cp["last_sync_at"], &v["now"]));
        if !cp["token_error"].is_null() {
            line("sync error", s(&cp["token_error"]));
        } else {
            line("sync error", s(&cp["last_sync_error"]));
        }
        let heartbeat = match &cp["last_heartbeat_error"] {
            Value::Null => ago(&cp["last_heartbeat_at"], &v["now"]),
            err => format!("failing: {}", s(err)),
        };
        line("heartbeat", heartbeat);
    }
    let redis = &v["redis"];
    if !redis.is_null() {
        let state = match s(&redis["state"]).as_str() {
            "ok" => "ok: cluster rate limits count in Redis".to_string(),
            "fallback" => format!(
                "FALLBACK since {}: cluster rate limits count locally on this gateway; last error: {}",
                ago(&redis["since"], &v["now"]),
                s(&redis["last_error"])
            ),
            other => other.to_string(),
        };
        line("redis", format!("{} {state}", s(&redis["url"])));
    }
    let otlp = &v["telemetry"];
    if !otlp.is_null() {
        let n = |k: &str| otlp[k].as_u64().unwrap_or(0);
        let mut text = format!(
            "{} spans exported {}, dropped (queue full) {}, failed {}; metric exports failed {}",
            s(&otlp["endpoint"]),
            n("spans_exported"),
            n("spans_dropped"),
            n("spans_failed"),
            n("metric_exports_failed")
        );
        if !otlp["last_error"].is_null() {
            text.push_str(&format!("; last error: {}", s(&otlp["last_error"])));
        }
        line("otlp", text);
    }
    let a = &v["analytics"];
    if !a.is_null() && !a["outbox_dir"].is_null() {
        line(
            "analytics",
            format!(
                "outbox {} batches, {} of {} bytes; sent {}, refused {}, dropped (outbox full) {}",
                s(&a["outbox_batches"]),
                s(&a["outbox_bytes"]),
                s(&a["outbox_max_bytes"]),
                s(&a["sent_batches"]),
                s(&a["refused_batches"]),
                s(&a["dropped_batches"]),
            ),
        );
        if !a["last_error"].is_null() {
            line("analytics err", s(&a["last_error"]));
        }
    }
    let c = &v["cache"];
    if !c.is_null() {
        line(
            "cache",
            format!(
                "{} hits, {} misses, {} stores, {} evictions, {} bypassed ({} Redis down); memory {} of {} bytes, {} entries",
                c["hits"],
                c["misses"],
                c["stores"],
                c["evictions"],
                c["bypassed"],
                c["bypassed_redis_down"],
                c["memory_bytes"],
                c["memory_capacity_bytes"],
                c["memory_entries"]
            ),
        );
    }
    for pool in v["pools"].as_array().into_iter().flatten() {
        for m in pool["members"].as_array().into_iter().flatten() {
            // A host name's member: which of its addresses this is.
            let at = match m["address"].as_str() {
                Some(a) if a != s(&m["member"]) => format!(" at {a}"),
                _ => String::new(),
            };
            line(
                "pool member",
                format!(
                    "{} {}{at} {} (priority {}, weight {}): {} requests, {} failures, {} ejections, {} breaker trips",
                    s(&pool["backend"]),
                    s(&m["member"]),
                    s(&m["state"]),
                    m["priority"],
                    m["weight"],
                    m["requests"],
                    m["failures"],
                    m["ejections"],
                    m["breaker_trips"]
                ),
            );
        }
    }
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

/// "12 s ago" for a Unix time, "never" for none.
fn ago(at: &Value, now: &Value) -> String {
    match (at.as_u64(), now.as_u64()) {
        (Some(at), Some(now)) => format!("{} s ago", now.saturating_sub(at)),
        _ => "never".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_seconds_ago() {
        assert_eq!(ago(&json!(90), &json!(100)), "10 s ago");
        assert_eq!(ago(&Value::Null, &json!(100)), "never");
    }

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
        // every reason but `passed` dropped: 2 + 3 + ... + (1 + last)
        let last = Reason::ALL.len() as u64 - 1;
        assert_eq!(t["dropped"]["packets"], (2..=1 + last).sum::<u64>());
        assert_eq!(t["dropped"]["bytes"], 100 * last);
    }
}
