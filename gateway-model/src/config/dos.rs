//! The `[dos]` section: what the XDP program enforces. Converted into a
//! validated `DosPolicy` that `datapath::policy` writes to the maps.
//!
//! ```toml
//! [dos]
//! packets_per_sec = 10000     # per source, global (port group 0)
//! packet_burst = 20000
//! syn_per_sec = 100           # new TCP connections per source
//! syn_burst = 200
//! unprotected_ports = "pass"  # or "drop": TCP/UDP outside every group
//! udp_reply_ports = [53, 123] # with "drop": UDP from these to the
//!                             # ephemeral range answers the node (DNS, NTP)
//! fragments = "pass"          # or "drop"
//! allow = ["10.1.0.0/16"]     # bypasses every limit; wins over deny and bans
//! deny = ["198.51.100.0/24"]
//! [[dos.port_groups]]
//! name = "api"
//! tcp = [8080, 8443]
//! syn_per_sec = 50            # unset limits inherit the global ones
//! ```

use std::ops::RangeInclusive;

use gateway_common::{
    Bucket, DEFAULT_SOURCES, FLAG_DROP_FRAGMENTS, FLAG_DROP_UNPROTECTED, Limits, MAX_GROUPS,
    MAX_LIST_ENTRIES, MAX_RATE, PROTO_TCP, PROTO_UDP, PortKey,
};
use serde::{Deserialize, Serialize};

use crate::cidr::{Cidr, mask as cidr_mask};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DosSection {
    /// Size of the per-source LRU map (fixed once the map is pinned).
    #[serde(default = "default_sources")]
    pub max_sources: u32,
    /// IPv6 sources are tracked per prefix of this length (default 64).
    #[serde(default = "default_v6_prefix")]
    pub ipv6_prefix: u8,
    /// Global per-source packets per second and burst.
    #[serde(default = "default_pps")]
    pub packets_per_sec: u64,
    #[serde(default = "default_packet_burst")]
    pub packet_burst: u64,
    /// Global per-source new TCP connections (SYN without ACK) per second and burst.
    #[serde(default = "default_syn")]
    pub syn_per_sec: u64,
    #[serde(default = "default_syn_burst")]
    pub syn_burst: u64,
    /// "pass" or "drop" TCP/UDP to ports outside every port group.
    #[serde(default = "default_pass")]
    pub unprotected_ports: String,
    /// With `unprotected_ports = "drop"`: UDP from these source ports to the
    /// node's ephemeral range is a reply to the node's own query (DNS, NTP)
    /// and passes the port filter.
    #[serde(default = "default_udp_reply_ports")]
    pub udp_reply_ports: Vec<u16>,
    /// "pass" or "drop" IPv4/IPv6 fragments.
    #[serde(default = "default_pass")]
    pub fragments: String,
    /// CIDRs that bypass every limit.
    #[serde(default)]
    pub allow: Vec<String>,
    /// CIDRs always dropped.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Protected ports with their own limits.
    #[serde(default)]
    pub port_groups: Vec<PortGroupSection>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortGroupSection {
    /// Unique name, shown in errors.
    pub name: String,
    /// Protected TCP destination ports.
    #[serde(default)]
    pub tcp: Vec<u16>,
    /// Protected UDP destination ports.
    #[serde(default)]
    pub udp: Vec<u16>,
    /// Limits of this group; unset ones inherit the global limits.
    pub packets_per_sec: Option<u64>,
    pub packet_burst: Option<u64>,
    pub syn_per_sec: Option<u64>,
    pub syn_burst: Option<u64>,
}

fn default_sources() -> u32 {
    DEFAULT_SOURCES
}
fn default_v6_prefix() -> u8 {
    64
}
fn default_pps() -> u64 {
    10_000
}
fn default_packet_burst() -> u64 {
    20_000
}
fn default_syn() -> u64 {
    100
}
fn default_syn_burst() -> u64 {
    200
}
fn default_pass() -> String {
    "pass".into()
}
fn default_udp_reply_ports() -> Vec<u16> {
    vec![53, 123]
}
/// More would make every UDP source port a reply port in effect.
const MAX_UDP_REPLY_PORTS: usize = 64;

/// The validated DoS configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DosPolicy {
    pub max_sources: u32,
    pub v6_mask: [u8; 16],
    pub flags: u32,
    /// Index 0: global limits; then one per port group, in file order.
    pub groups: Vec<Limits>,
    pub ports: Vec<(PortKey, u32)>,
    /// UDP source ports whose packets to the ephemeral range are replies
    /// (used with `FLAG_DROP_UNPROTECTED`).
    pub udp_reply_ports: Vec<u16>,
    /// With `FLAG_DROP_UNPROTECTED`: the node's ephemeral port range, read
    /// from the kernel with the configuration, so that a reload picks up a
    /// changed `net.ipv4.ip_local_port_range`.
    pub ephemeral: Option<RangeInclusive<u16>>,
    pub allow: Vec<Cidr>,
    pub deny: Vec<Cidr>,
}

impl TryFrom<&DosSection> for DosPolicy {
    type Error = String;

    fn try_from(s: &DosSection) -> Result<DosPolicy, String> {
        if !(1..=1 << 24).contains(&s.max_sources) {
            return Err(format!(
                "dos.max_sources: {} is out of range; use 1 to 16777216",
                s.max_sources
            ));
        }
        if s.ipv6_prefix == 0 || s.ipv6_prefix > 128 {
            return Err(format!(
                "dos.ipv6_prefix: {} is out of range; use 1 to 128 (64 is typical)",
                s.ipv6_prefix
            ));
        }
        let global = Limits {
            packets: bucket(
                "dos.packets_per_sec",
                s.packets_per_sec,
                "dos.packet_burst",
                s.packet_burst,
            )?,
            syns: bucket(
                "dos.syn_per_sec",
                s.syn_per_sec,
                "dos.syn_burst",
                s.syn_burst,
            )?,
        };
        let mut flags = 0;
        let mut ephemeral = None;
        if policy("dos.unprotected_ports", &s.unprotected_ports)? {
            flags |= FLAG_DROP_UNPROTECTED;
            ephemeral = Some(super::ephemeral_ports().map_err(|e| {
                format!("dos.unprotected_ports = \"drop\" needs the ephemeral port range: {e}")
            })?);
        }
        if policy("dos.fragments", &s.fragments)? {
            flags |= FLAG_DROP_FRAGMENTS;
        }
        if s.port_groups.len() >= MAX_GROUPS as usize {
            return Err(format!(
                "dos.port_groups: {} groups; at most {} are supported",
                s.port_groups.len(),
                MAX_GROUPS - 1
            ));
        }
        let mut groups = vec![global];
        let mut ports: Vec<(PortKey, u32)> = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for (i, g) in s.port_groups.iter().enumerate() {
            let at = |m: String| format!("dos.port_groups \"{}\": {m}", g.name);
            if g.name.is_empty() || names.contains(&g.name.as_str()) {
                return Err(format!(
                    "dos.port_groups: group name \"{}\" is empty or used twice; give each group a unique name",
                    g.name
                ));
            }
            names.push(&g.name);
            let index = i as u32 + 1;
            let limits = Limits {
                packets: bucket(
                    "packets_per_sec",
                    g.packets_per_sec.unwrap_or(s.packets_per_sec),
                    "packet_burst",
                    g.packet_burst.unwrap_or(s.packet_burst),
                )
                .map_err(at)?,
                syns: bucket(
                    "syn_per_sec",
                    g.syn_per_sec.unwrap_or(s.syn_per_sec),
                    "syn_burst",
                    g.syn_burst.unwrap_or(s.syn_burst),
                )
                .map_err(at)?,
            };
            groups.push(limits);
            if g.tcp.is_empty() && g.udp.is_empty() {
                return Err(at(
                    "lists no tcp or udp ports; add some or remove the group".into(),
                ));
            }
            let all = g
                .tcp
                .iter()
                .map(|&p| (PROTO_TCP, p))
                .chain(g.udp.iter().map(|&p| (PROTO_UDP, p)));
            for (proto, port) in all {
                let key = PortKey {
                    proto,
                    _pad: 0,
                    port,
                };
                let name = if proto == PROTO_TCP { "tcp" } else { "udp" };
                if port == 0 {
                    return Err(at(format!("{name} port 0 is not a port; use 1 to 65535")));
                }
                if ports.iter().any(|(k, _)| *k == key) {
                    return Err(at(format!(
                        "{name} port {port} is listed twice; a port belongs to one group"
                    )));
                }
                ports.push((key, index));
            }
        }
        if s.udp_reply_ports.len() > MAX_UDP_REPLY_PORTS {
            return Err(format!(
                "dos.udp_reply_ports: {} ports; at most {MAX_UDP_REPLY_PORTS} are supported",
                s.udp_reply_ports.len()
            ));
        }
        if s.udp_reply_ports.contains(&0) {
            return Err("dos.udp_reply_ports: port 0 is not a port; use 1 to 65535".into());
        }
        let mut udp_reply_ports = s.udp_reply_ports.clone();
        udp_reply_ports.sort_unstable();
        udp_reply_ports.dedup();
        Ok(DosPolicy {
            max_sources: s.max_sources,
            v6_mask: cidr_mask([0xff; 16], s.ipv6_prefix),
            flags,
            groups,
            ports,
            udp_reply_ports,
            ephemeral,
            allow: cidrs("dos.allow", &s.allow)?,
            deny: cidrs("dos.deny", &s.deny)?,
        })
    }
}

fn bucket(rate_field: &str, rate: u64, burst_field: &str, burst: u64) -> Result<Bucket, String> {
    for (field, v) in [(rate_field, rate), (burst_field, burst)] {
        if v == 0 || v > MAX_RATE {
            return Err(format!("{field}: {v} is out of range; use 1 to {MAX_RATE}"));
        }
    }
    Ok(Bucket::new(rate, burst))
}

/// "drop" -> true, "pass" -> false.
fn policy(field: &str, value: &str) -> Result<bool, String> {
    match value {
        "drop" => Ok(true),
        "pass" => Ok(false),
        other => Err(format!(
            "{field}: \"{other}\" is not a policy; use \"pass\" or \"drop\""
        )),
    }
}

fn cidrs(field: &str, list: &[String]) -> Result<Vec<Cidr>, String> {
    if list.len() > MAX_LIST_ENTRIES as usize {
        return Err(format!(
            "{field}: {} entries; at most {MAX_LIST_ENTRIES} are supported",
            list.len()
        ));
    }
    let mut out: Vec<Cidr> = list
        .iter()
        .map(|s| s.parse::<Cidr>().map_err(|e| format!("{field}: {e}")))
        .collect::<Result<_, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DosPolicy, String> {
        let s: DosSection = toml::from_str(text).map_err(|e| e.to_string())?;
        DosPolicy::try_from(&s)
    }

    #[test]
    fn defaults_and_groups() {
        let p =
            parse("port_groups = [{ name = \"api\", tcp = [8080], udp = [53], syn_per_sec = 5 }]")
                .unwrap();
        assert_eq!(p.groups.len(), 2);
        assert_eq!(p.groups[1].syns.rate, 5);
        assert_eq!(p.groups[1].packets, p.groups[0].packets);
        assert_eq!(p.ports.len(), 2);
        assert_eq!(p.v6_mask[7], 0xff);
        assert_eq!(p.v6_mask[8], 0);
        assert_eq!(p.flags, 0);
        assert_eq!(p.udp_reply_ports, [53, 123]);
        let p = parse("udp_reply_ports = [5353, 53, 5353]").unwrap();
        assert_eq!(p.udp_reply_ports, [53, 5353]);
    }

    #[test]
    fn bad_values_name_the_field() {
        for (text, want) in [
            ("packets_per_sec = 0", "dos.packets_per_sec: 0"),
            ("syn_burst = 1000000001", "dos.syn_burst"),
            ("ipv6_prefix = 0", "dos.ipv6_prefix"),
            ("max_sources = 0", "dos.max_sources"),
            ("fragments = \"maybe\"", "dos.fragments"),
            ("deny = [\"10.0.0.1/8\"]", "dos.deny"),
            ("allow = [\"nope\"]", "dos.allow"),
            ("port_groups = [{ name = \"a\", tcp = [0] }]", "port 0"),
            ("udp_reply_ports = [53, 0]", "dos.udp_reply_ports: port 0"),
            ("port_groups = [{ name = \"a\" }]", "no tcp or udp"),
            (
                "port_groups = [{ name = \"a\", tcp = [1] }, { name = \"b\", tcp = [1] }]",
                "listed twice",
            ),
            (
                "port_groups = [{ name = \"a\", tcp = [1], packet_burst = 0 }]",
                "\"a\": packet_burst",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
}
