//! Opening the pinned maps of an interface by name, typed, from any
//! process: the daemon, the operator CLI and the tests all go through here.

use aya::{
    Pod,
    maps::{Array, HashMap, LpmTrie, Map, MapData},
};

use super::{DatapathError, PinDir};

fn open(dir: &PinDir, name: &'static str) -> Result<MapData, DatapathError> {
    let path = dir.map(name);
    if !path.exists() {
        return Err(DatapathError::NotPinned {
            iface: dir.iface.clone(),
            dir: dir.path.clone(),
        });
    }
    MapData::from_pin(&path).map_err(|e| DatapathError::map(name, "opening", e))
}

pub(crate) fn array<V: Pod>(
    dir: &PinDir,
    name: &'static str,
) -> Result<Array<MapData, V>, DatapathError> {
    Array::try_from(Map::Array(open(dir, name)?))
        .map_err(|e| DatapathError::map(name, "opening", e))
}

pub(crate) fn lru<K: Pod, V: Pod>(
    dir: &PinDir,
    name: &'static str,
) -> Result<HashMap<MapData, K, V>, DatapathError> {
    HashMap::try_from(Map::LruHashMap(open(dir, name)?))
        .map_err(|e| DatapathError::map(name, "opening", e))
}

pub(crate) fn trie<K: Pod, V: Pod>(
    dir: &PinDir,
    name: &'static str,
) -> Result<LpmTrie<MapData, K, V>, DatapathError> {
    LpmTrie::try_from(Map::LpmTrie(open(dir, name)?))
        .map_err(|e| DatapathError::map(name, "opening", e))
}
