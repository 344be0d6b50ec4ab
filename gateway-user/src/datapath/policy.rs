//! Writing a `DosPolicy` into the pinned maps without reloading the program
//! and without a window where no limits hold: every entry is updated in
//! place (new entries inserted and existing ones overwritten before stale
//! ones are removed), and `CONFIG` is written last. With no policy, CONFIG
//! is reset and the program fails open.
//!
//! With `unprotected_ports = "drop"`, `PORTS` also marks the node's
//! ephemeral range (`DosPolicy::ephemeral`, read from the kernel with the
//! configuration, so a reload picks up a changed sysctl) and the UDP reply
//! source ports: replies to the node's own connections pass the port
//! filter.

use std::collections::HashSet;

use aya::maps::{
    MapData,
    lpm_trie::{Key, LpmTrie},
};
use gateway_common::{
    CONFIG_MAP, DosConfig, FLAG_DROP_UNPROTECTED, FLAG_LISTS_V4, FLAG_LISTS_V6, GROUPS_MAP,
    LIST_ALLOW, LIST_DENY, LISTS_V4_MAP, LISTS_V6_MAP, Limits, MAX_GROUPS, PORT_EPHEMERAL,
    PORT_REPLY_SOURCE, PORT_SLOTS, PORTS_MAP, PROTO_TCP, PROTO_UDP, PortKey,
};

use super::{Cidr, DatapathError, PinDir, maps};
use crate::config::DosPolicy;

pub fn apply(dir: &PinDir, policy: Option<&DosPolicy>) -> Result<(), DatapathError> {
    let mut config = maps::array::<DosConfig>(dir, CONFIG_MAP)?;
    let Some(policy) = policy else {
        return config
            .set(0, DosConfig::default(), 0)
            .map_err(|e| DatapathError::map(CONFIG_MAP, "writing", e));
    };

    let mut groups = maps::array::<Limits>(dir, GROUPS_MAP)?;
    for i in 0..MAX_GROUPS {
        // Unused groups get the global limits: a stale port entry that still
        // points at one during the update is limited, never unlimited.
        let limits = policy.groups.get(i as usize).unwrap_or(&policy.groups[0]);
        groups
            .set(i, limits, 0)
            .map_err(|e| DatapathError::map(GROUPS_MAP, "writing", e))?;
    }

    // New and changed entries first, then the ones cleared (a full scan:
    // the previous policy may belong to a daemon that is gone).
    let want = port_marks(policy);
    let mut ports = maps::array::<u32>(dir, PORTS_MAP)?;
    let have = (0..PORT_SLOTS)
        .map(|slot| ports.get(&slot, 0))
        .collect::<Result<Vec<u32>, _>>()
        .map_err(|e| DatapathError::map(PORTS_MAP, "reading", e))?;
    for clearing in [false, true] {
        for (slot, (&w, &h)) in (0..PORT_SLOTS).zip(want.iter().zip(&have)) {
            if w != h && (w == 0) == clearing {
                ports
                    .set(slot, w, 0)
                    .map_err(|e| DatapathError::map(PORTS_MAP, "writing", e))?;
            }
        }
    }

    let (v4, v6) = lists(&policy.allow, &policy.deny);
    sync_trie(&mut maps::trie(dir, LISTS_V4_MAP)?, LISTS_V4_MAP, &v4)?;
    sync_trie(&mut maps::trie(dir, LISTS_V6_MAP)?, LISTS_V6_MAP, &v6)?;
    let mut flags = policy.flags;
    if !v4.is_empty() {
        flags |= FLAG_LISTS_V4;
    }
    if !v6.is_empty() {
        flags |= FLAG_LISTS_V6;
    }

    config
        .set(
            0,
            DosConfig {
                configured: 1,
                flags,
                v6_mask: policy.v6_mask,
            },
            0,
        )
        .map_err(|e| DatapathError::map(CONFIG_MAP, "writing", e))
}

/// The value of every `PORTS` slot: the group of each protected port and,
/// when unprotected ports drop, the reply marks.
fn port_marks(policy: &DosPolicy) -> Vec<u32> {
    let slot = |proto, port| {
        PortKey {
            proto,
            _pad: 0,
            port,
        }
        .slot() as usize
    };
    let mut marks = vec![0u32; PORT_SLOTS as usize];
    for (key, group) in &policy.ports {
        marks[key.slot() as usize] = *group;
    }
    if let Some(range) = policy.ephemeral.clone()
        && policy.flags & FLAG_DROP_UNPROTECTED != 0
    {
        for port in range {
            marks[slot(PROTO_TCP, port)] |= PORT_EPHEMERAL;
            marks[slot(PROTO_UDP, port)] |= PORT_EPHEMERAL;
        }
        for &port in &policy.udp_reply_ports {
            marks[slot(PROTO_UDP, port)] |= PORT_REPLY_SOURCE;
        }
    }
    marks
}

type Entries<const N: usize> = Vec<(Key<[u8; N]>, u32)>;

/// The allow and deny lists as trie entries per family. A deny block that
/// lies inside an allow block is written as allow, so that the longest
/// match of any address inside an allow block is an allow entry.
fn lists(allow: &[Cidr], deny: &[Cidr]) -> (Entries<4>, Entries<16>) {
    let allowed = |d: &Cidr| allow.iter().any(|a| a.contains(d));
    let entries = allow.iter().map(|a| (*a, LIST_ALLOW)).chain(
        deny.iter()
            .filter(|d| !allow.contains(d))
            .map(|d| (*d, if allowed(d) { LIST_ALLOW } else { LIST_DENY })),
    );
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for (cidr, value) in entries {
        match cidr {
            Cidr::V4(a, p) => v4.push((Key::new(p.into(), a), value)),
            Cidr::V6(a, p) => v6.push((Key::new(p.into(), a), value)),
        }
    }
    (v4, v6)
}

fn sync_trie<const N: usize>(
    trie: &mut LpmTrie<MapData, [u8; N], u32>,
    name: &'static str,
    want: &Entries<N>,
) -> Result<(), DatapathError> {
    for (key, value) in want {
        trie.insert(key, value, 0)
            .map_err(|e| DatapathError::map(name, "writing", e))?;
    }
    let id = |k: &Key<[u8; N]>| (k.prefix_len(), k.data());
    let wanted: HashSet<_> = want.iter().map(|(k, _)| id(k)).collect();
    let stale: Vec<_> = trie
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !wanted.contains(&id(k)))
        .collect();
    for key in stale {
        let _ = trie.remove(&key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_marks_only_when_unprotected_ports_drop() {
        let text = "[gateway]\nlisten = \"127.0.0.1:1\"\n[dos]\nunprotected_ports = \"drop\"\nudp_reply_ports = [53]\nport_groups = [{ name = \"a\", tcp = [40000] }]\n";
        let mut policy = crate::config::Config::parse("t.toml", text)
            .unwrap()
            .dos
            .unwrap();
        assert_eq!(
            policy.ephemeral,
            Some(gateway_model::config::ephemeral_ports().unwrap())
        );
        policy.ephemeral = Some(32768..=60999);
        let tcp = |p: u16| p as usize;
        let udp = |p: u16| 65536 + p as usize;
        let marks = port_marks(&policy);
        assert_eq!(
            marks[tcp(40000)],
            1 | PORT_EPHEMERAL,
            "group kept, mark added"
        );
        assert_eq!(marks[tcp(32768)], PORT_EPHEMERAL);
        assert_eq!(marks[udp(60999)], PORT_EPHEMERAL);
        assert_eq!(marks[tcp(32767)], 0);
        assert_eq!(marks[udp(61000)], 0);
        assert_eq!(marks[udp(53)], PORT_REPLY_SOURCE);
        assert_eq!(marks[tcp(53)], 0);
        policy.flags &= !FLAG_DROP_UNPROTECTED;
        let none = port_marks(&policy);
        assert_eq!(none.iter().filter(|&&m| m != 0).count(), 1);
    }

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn allow_wins_through_longest_match() {
        let allow = [c("10.0.0.0/8"), c("192.0.2.7")];
        let deny = [
            c("10.1.0.0/16"),
            c("192.0.2.0/24"),
            c("10.0.0.0/8"),
            c("2001:db8::/32"),
        ];
        let (v4, v6) = lists(&allow, &deny);
        let value = |p: u32, a: [u8; 4]| {
            v4.iter()
                .find(|(k, _)| k.prefix_len() == p && k.data() == a)
                .map(|(_, v)| *v)
        };
        // A deny inside an allow becomes allow; a deny around an allow stays.
        assert_eq!(value(16, [10, 1, 0, 0]), Some(LIST_ALLOW));
        assert_eq!(value(24, [192, 0, 2, 0]), Some(LIST_DENY));
        assert_eq!(value(32, [192, 0, 2, 7]), Some(LIST_ALLOW));
        assert_eq!(value(8, [10, 0, 0, 0]), Some(LIST_ALLOW));
        assert_eq!(v4.len(), 4, "the duplicate 10.0.0.0/8 is written once");
        assert_eq!(v6.len(), 1);
        assert_eq!(v6[0].1, LIST_DENY);
    }
}
