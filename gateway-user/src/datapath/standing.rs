//! A client address as the XDP program sees it: on the allow list, on the
//! deny list, banned, or none of these. Read from the pinned `LISTS_*` and
//! `BANS_*` tries (longest-prefix match in the kernel, one lookup each), so
//! the proxy's `ip-filter` and client-IP keyed limits apply the same state.

use std::net::IpAddr;

use aya::maps::{
    MapData, MapError,
    lpm_trie::{Key, LpmTrie},
};
use gateway_common::{BANS_V4_MAP, BANS_V6_MAP, LIST_ALLOW, LIST_DENY, LISTS_V4_MAP, LISTS_V6_MAP};

use super::{DatapathError, PinDir, maps};
use crate::clock::monotonic_ns;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// On the allow list: XDP bypasses its limits, bans and deny list.
    Allowed,
    /// On the deny list.
    Denied,
    /// Banned until this CLOCK_MONOTONIC time (ns).
    Banned { until_ns: u64 },
    /// None of the above.
    Unlisted,
}

impl Standing {
    /// Whether XDP refuses this source at `now_ns` (allow wins, as in XDP).
    pub fn refused(self, now_ns: u64) -> bool {
        match self {
            Standing::Denied => true,
            Standing::Banned { until_ns } => until_ns > now_ns,
            Standing::Allowed | Standing::Unlisted => false,
        }
    }
}

/// The four tries of one interface, opened once.
pub struct SourceMaps {
    lists_v4: LpmTrie<MapData, [u8; 4], u32>,
    lists_v6: LpmTrie<MapData, [u8; 16], u32>,
    bans_v4: LpmTrie<MapData, [u8; 4], u64>,
    bans_v6: LpmTrie<MapData, [u8; 16], u64>,
}

impl SourceMaps {
    pub fn open(dir: &PinDir) -> Result<SourceMaps, DatapathError> {
        Ok(SourceMaps {
            lists_v4: maps::trie(dir, LISTS_V4_MAP)?,
            lists_v6: maps::trie(dir, LISTS_V6_MAP)?,
            bans_v4: maps::trie(dir, BANS_V4_MAP)?,
            bans_v6: maps::trie(dir, BANS_V6_MAP)?,
        })
    }

    /// Two lookups (list, then ban); IPv4-mapped IPv6 addresses are IPv4.
    pub fn standing(&self, ip: IpAddr) -> Result<Standing, DatapathError> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (list, ban) = match ip {
            IpAddr::V4(a) => {
                let key = Key::new(32, a.octets());
                (
                    found(self.lists_v4.get(&key, 0), LISTS_V4_MAP)?,
                    found(self.bans_v4.get(&key, 0), BANS_V4_MAP)?,
                )
            }
            IpAddr::V6(a) => {
                let key = Key::new(128, a.octets());
                (
                    found(self.lists_v6.get(&key, 0), LISTS_V6_MAP)?,
                    found(self.bans_v6.get(&key, 0), BANS_V6_MAP)?,
                )
            }
        };
        Ok(match (list, ban) {
            (Some(LIST_ALLOW), _) => Standing::Allowed,
            (Some(LIST_DENY), _) => Standing::Denied,
            (_, Some(until_ns)) if until_ns > monotonic_ns() => Standing::Banned { until_ns },
            _ => Standing::Unlisted,
        })
    }
}

/// A missing key is "not listed", not an error.
fn found<V>(r: Result<V, MapError>, name: &'static str) -> Result<Option<V>, DatapathError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(MapError::KeyNotFound) => Ok(None),
        Err(MapError::SyscallError(s))
            if s.io_error.raw_os_error() == Some(nix::errno::Errno::ENOENT as i32) =>
        {
            Ok(None)
        }
        Err(e) => Err(DatapathError::map(name, "reading", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_wins_and_bans_expire() {
        assert!(Standing::Denied.refused(5));
        assert!(Standing::Banned { until_ns: 10 }.refused(5));
        assert!(!Standing::Banned { until_ns: 10 }.refused(10));
        assert!(!Standing::Allowed.refused(5));
        assert!(!Standing::Unlisted.refused(5));
    }
}
