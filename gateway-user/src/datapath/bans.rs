//! Temporary bans in the pinned `BANS_V4` / `BANS_V6` tries: written by
//! `edgegw ban` / `unban` (and later by the proxy), enforced by the XDP
//! program until their CLOCK_MONOTONIC expiry.

use std::time::Duration;

use aya::maps::{
    MapData, MapError,
    lpm_trie::{Key, LpmTrie},
};
use gateway_common::{BAN_HORIZON_MAP, BANS_V4_MAP, BANS_V6_MAP, MAX_BANS};
use nix::errno::Errno;

use super::{Cidr, DatapathError, PinDir, maps};
use crate::clock::monotonic_ns;

/// One active ban.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Ban {
    pub cidr: String,
    /// Seconds until it expires (rounded up).
    pub expires_in_secs: u64,
}

/// Bans `cidr` for `duration` (replacing an existing ban of the same
/// block). A full trie is first pruned of expired bans; if it is still
/// full, that is an error and nothing changes.
pub fn ban(dir: &PinDir, cidr: Cidr, duration: Duration) -> Result<(), DatapathError> {
    let until = monotonic_ns().saturating_add(duration.as_nanos().min(u64::MAX as u128) as u64);
    // Raise the horizon first: the program only looks for bans before it.
    let mut horizon = maps::array::<u64>(dir, BAN_HORIZON_MAP)?;
    let current = horizon
        .get(&0, 0)
        .map_err(|e| DatapathError::map(BAN_HORIZON_MAP, "reading", e))?;
    if until > current {
        horizon
            .set(0, until, 0)
            .map_err(|e| DatapathError::map(BAN_HORIZON_MAP, "writing", e))?;
    }
    match cidr {
        Cidr::V4(a, p) => insert(
            &mut maps::trie(dir, BANS_V4_MAP)?,
            BANS_V4_MAP,
            Key::new(p.into(), a),
            until,
        ),
        Cidr::V6(a, p) => insert(
            &mut maps::trie(dir, BANS_V6_MAP)?,
            BANS_V6_MAP,
            Key::new(p.into(), a),
            until,
        ),
    }
}

fn insert<const N: usize>(
    trie: &mut LpmTrie<MapData, [u8; N], u64>,
    name: &'static str,
    key: Key<[u8; N]>,
    until: u64,
) -> Result<(), DatapathError> {
    match trie.insert(&key, until, 0) {
        Ok(()) => return Ok(()),
        Err(e) if !is_full(&e) => return Err(DatapathError::map(name, "writing", e)),
        Err(_) => {}
    }
    prune(trie);
    trie.insert(&key, until, 0).map_err(|e| {
        if is_full(&e) {
            DatapathError::BansFull { max: MAX_BANS }
        } else {
            DatapathError::map(name, "writing", e)
        }
    })
}

fn is_full(e: &MapError) -> bool {
    matches!(e, MapError::SyscallError(s) if matches!(s.io_error.raw_os_error().map(Errno::from_raw), Some(Errno::ENOSPC | Errno::E2BIG)))
}

/// Removes expired bans.
fn prune<const N: usize>(trie: &mut LpmTrie<MapData, [u8; N], u64>) {
    let now = monotonic_ns();
    let expired: Vec<_> = trie
        .iter()
        .filter_map(Result::ok)
        .filter(|(_, until)| *until <= now)
        .map(|(k, _)| k)
        .collect();
    for key in expired {
        let _ = trie.remove(&key);
    }
}

/// Lifts the ban of exactly `cidr`.
pub fn unban(dir: &PinDir, cidr: Cidr) -> Result<(), DatapathError> {
    let result = match cidr {
        Cidr::V4(a, p) => {
            maps::trie::<[u8; 4], u64>(dir, BANS_V4_MAP)?.remove(&Key::new(p.into(), a))
        }
        Cidr::V6(a, p) => {
            maps::trie::<[u8; 16], u64>(dir, BANS_V6_MAP)?.remove(&Key::new(p.into(), a))
        }
    };
    match result {
        Ok(()) => Ok(()),
        Err(MapError::KeyNotFound) => Err(DatapathError::NotBanned {
            cidr: cidr.to_string(),
        }),
        Err(MapError::SyscallError(s))
            if s.io_error.raw_os_error() == Some(Errno::ENOENT as i32) =>
        {
            Err(DatapathError::NotBanned {
                cidr: cidr.to_string(),
            })
        }
        Err(e) => Err(DatapathError::map(BANS_V4_MAP, "removing from", e)),
    }
}

/// Active bans, soonest expiry first.
pub fn list(dir: &PinDir) -> Result<Vec<Ban>, DatapathError> {
    let now = monotonic_ns();
    let mut out = Vec::new();
    let row = |cidr: Cidr, until: u64| Ban {
        cidr: cidr.to_string(),
        expires_in_secs: (until - now).div_ceil(1_000_000_000),
    };
    for (k, until) in maps::trie::<[u8; 4], u64>(dir, BANS_V4_MAP)?
        .iter()
        .filter_map(Result::ok)
    {
        if until > now {
            out.push((until, row(Cidr::V4(k.data(), k.prefix_len() as u8), until)));
        }
    }
    for (k, until) in maps::trie::<[u8; 16], u64>(dir, BANS_V6_MAP)?
        .iter()
        .filter_map(Result::ok)
    {
        if until > now {
            out.push((until, row(Cidr::V6(k.data(), k.prefix_len() as u8), until)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cidr.cmp(&b.1.cidr)));
    Ok(out.into_iter().map(|(_, b)| b).collect())
}
