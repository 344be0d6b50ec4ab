//! Reading the per-source state (`SOURCES`) for `edgegw top`.

use std::{
    collections::HashMap,
    net::{Ipv4Addr, Ipv6Addr},
};

use gateway_common::{CONFIG_MAP, DosConfig, SOURCES_MAP, SourceKey, SourceState, is_link_local};

use super::{DatapathError, PinDir, maps};

/// Packets one source sent and how many were dropped by its buckets,
/// summed over port groups.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SourceTotals {
    /// An IPv4 address, or an IPv6 prefix such as "2001:db8:1:2::/64"
    /// (a link-local source is one address: "fe80::1/128").
    pub source: String,
    pub packets: u64,
    pub dropped: u64,
}

/// Sources by dropped, then seen packets, most first; at most `limit`.
pub fn top(dir: &PinDir, limit: usize) -> Result<Vec<SourceTotals>, DatapathError> {
    let config = maps::array::<DosConfig>(dir, CONFIG_MAP)?
        .get(&0, 0)
        .map_err(|e| DatapathError::map(CONFIG_MAP, "reading", e))?;
    let v6_prefix: u32 = config.v6_mask.iter().map(|b| b.count_ones()).sum();
    let sources = maps::lru::<SourceKey, SourceState>(dir, SOURCES_MAP)?;
    let mut totals: HashMap<String, (u64, u64)> = HashMap::new();
    for (key, state) in sources.iter().filter_map(Result::ok) {
        let name = if key.family == 4 {
            let [a, b, c, d, ..] = key.addr;
            Ipv4Addr::new(a, b, c, d).to_string()
        } else {
            let prefix = if is_link_local(&key.addr) {
                128
            } else {
                v6_prefix
            };
            format!("{}/{prefix}", Ipv6Addr::from(key.addr))
        };
        let t = totals.entry(name).or_default();
        t.0 += state.packets;
        t.1 += state.dropped;
    }
    let mut rows: Vec<SourceTotals> = totals
        .into_iter()
        .map(|(source, (packets, dropped))| SourceTotals {
            source,
            packets,
            dropped,
        })
        .collect();
    rows.sort_by(|a, b| {
        (b.dropped, b.packets)
            .cmp(&(a.dropped, a.packets))
            .then_with(|| a.source.cmp(&b.source))
    });
    rows.truncate(limit);
    Ok(rows)
}
