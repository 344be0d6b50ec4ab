//! Before a pinned program and its maps are adopted: every pinned map must
//! have the type and key/value sizes this version's program expects, or
//! the adoption would fail in the verifier (or worse, misread the state).
//! The sizes come from the shared types in `gateway_common`.

use std::mem::size_of;

use aya::maps::{MapInfo, MapType};
use gateway_common::{
    BAN_HORIZON_MAP, BANS_V4_MAP, BANS_V6_MAP, CONFIG_MAP, COUNTERS_MAP, Counter, DosConfig,
    GROUPS_MAP, LISTS_V4_MAP, LISTS_V6_MAP, Limits, PORTS_MAP, SOURCES_MAP, SourceKey, SourceState,
};

use super::{DatapathError, PinDir};

/// LPM trie keys: a u32 prefix length, then the address.
const LPM_V4: usize = 4 + 4;
const LPM_V6: usize = 4 + 16;

/// (map, type, key size, value size) as the embedded program defines them.
const LAYOUTS: [(&str, MapType, usize, usize); 10] = [
    (COUNTERS_MAP, MapType::PerCpuArray, 4, size_of::<Counter>()),
    (CONFIG_MAP, MapType::Array, 4, size_of::<DosConfig>()),
    (GROUPS_MAP, MapType::Array, 4, size_of::<Limits>()),
    (PORTS_MAP, MapType::Array, 4, 4),
    (
        SOURCES_MAP,
        MapType::LruHash,
        size_of::<SourceKey>(),
        size_of::<SourceState>(),
    ),
    (LISTS_V4_MAP, MapType::LpmTrie, LPM_V4, 4),
    (LISTS_V6_MAP, MapType::LpmTrie, LPM_V6, 4),
    (BANS_V4_MAP, MapType::LpmTrie, LPM_V4, 8),
    (BANS_V6_MAP, MapType::LpmTrie, LPM_V6, 8),
    (BAN_HORIZON_MAP, MapType::Array, 4, 8),
];

/// Fails with one clear error naming the first pinned map that does not
/// match. Maps that are not pinned yet are fine: the loader creates them.
pub fn check_pinned_maps(dir: &PinDir) -> Result<(), DatapathError> {
    for (name, kind, key, value) in LAYOUTS {
        let path = dir.map(name);
        if !path.exists() {
            continue;
        }
        let info =
            MapInfo::from_pin(&path).map_err(|e| DatapathError::map(name, "inspecting", e))?;
        let matches = info.map_type().is_ok_and(|t| t == kind)
            && info.key_size() as usize == key
            && info.value_size() as usize == value;
        if !matches {
            return Err(DatapathError::IncompatiblePin {
                map: name,
                iface: dir.iface.clone(),
            });
        }
    }
    Ok(())
}
