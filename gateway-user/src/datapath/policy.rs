//! Writing a `DosPolicy` into the pinned maps without reloading the program
//! and without a window where no limits hold: every entry is updated in
//! place (new entries inserted and existing ones overwritten before stale
//! ones are removed), and `CONFIG` is written last. With no policy, CONFIG
//! is reset and the program fails open.

use std::collections::HashSet;

use aya::maps::{
    MapData,
    lpm_trie::{Key, LpmTrie},
};
use gateway_common::{
    ALLOW_V4_MAP, ALLOW_V6_MAP, CONFIG_MAP, DENY_V4_MAP, DENY_V6_MAP, DosConfig, GROUPS_MAP,
    Limits, MAX_GROUPS, PORTS_MAP, PortKey,
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

    let mut ports = maps::hash::<PortKey, u32>(dir, PORTS_MAP)?;
    for (key, group) in &policy.ports {
        ports
            .insert(key, group, 0)
            .map_err(|e| DatapathError::map(PORTS_MAP, "writing", e))?;
    }
    let wanted: HashSet<PortKey> = policy.ports.iter().map(|(k, _)| *k).collect();
    let stale: Vec<PortKey> = ports
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !wanted.contains(k))
        .collect();
    for key in stale {
        let _ = ports.remove(&key);
    }

    sync_list(dir, ALLOW_V4_MAP, ALLOW_V6_MAP, &policy.allow)?;
    sync_list(dir, DENY_V4_MAP, DENY_V6_MAP, &policy.deny)?;

    config
        .set(
            0,
            DosConfig {
                configured: 1,
                flags: policy.flags,
                v6_mask: policy.v6_mask,
            },
            0,
        )
        .map_err(|e| DatapathError::map(CONFIG_MAP, "writing", e))
}

fn sync_list(
    dir: &PinDir,
    v4_name: &'static str,
    v6_name: &'static str,
    cidrs: &[Cidr],
) -> Result<(), DatapathError> {
    let mut v4 = maps::trie::<[u8; 4], u32>(dir, v4_name)?;
    let mut v6 = maps::trie::<[u8; 16], u32>(dir, v6_name)?;
    let (mut want4, mut want6) = (Vec::new(), Vec::new());
    for cidr in cidrs {
        match *cidr {
            Cidr::V4(a, p) => want4.push(Key::new(p.into(), a)),
            Cidr::V6(a, p) => want6.push(Key::new(p.into(), a)),
        }
    }
    sync_trie(&mut v4, v4_name, &want4)?;
    sync_trie(&mut v6, v6_name, &want6)
}

fn sync_trie<const N: usize>(
    trie: &mut LpmTrie<MapData, [u8; N], u32>,
    name: &'static str,
    want: &[Key<[u8; N]>],
) -> Result<(), DatapathError> {
    for key in want {
        trie.insert(key, 1, 0)
            .map_err(|e| DatapathError::map(name, "writing", e))?;
    }
    let id = |k: &Key<[u8; N]>| (k.prefix_len(), k.data());
    let wanted: HashSet<_> = want.iter().map(id).collect();
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
