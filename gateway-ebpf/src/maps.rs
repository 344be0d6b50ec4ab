//! The DoS maps (layouts and writers documented in `gateway_common::dos`).
//! Every map is pinned by the daemon; the sizes here are the defaults the
//! loader may override (`SOURCES` from `dos.max_sources`). Kernel >= 4.11
//! for LPM tries, 4.10 for LRU hashes.

use aya_ebpf::{
    macros::map,
    maps::{Array, LpmTrie, LruHashMap},
};
use gateway_common::{
    DEFAULT_SOURCES, DosConfig, Limits, MAX_BANS, MAX_GROUPS, MAX_LIST_ENTRIES, PORT_SLOTS,
    SourceKey, SourceState,
};

#[map(name = "CONFIG")]
pub static CONFIG: Array<DosConfig> = Array::with_max_entries(1, 0);

#[map(name = "GROUPS")]
pub static GROUPS: Array<Limits> = Array::with_max_entries(MAX_GROUPS, 0);

#[map(name = "PORTS")]
pub static PORTS: Array<u32> = Array::with_max_entries(PORT_SLOTS, 0);

#[map(name = "SOURCES")]
pub static SOURCES: LruHashMap<SourceKey, SourceState> =
    LruHashMap::with_max_entries(DEFAULT_SOURCES, 0);

#[map(name = "LISTS_V4")]
pub static LISTS_V4: LpmTrie<[u8; 4], u32> = LpmTrie::with_max_entries(MAX_LIST_ENTRIES, 0);

#[map(name = "LISTS_V6")]
pub static LISTS_V6: LpmTrie<[u8; 16], u32> = LpmTrie::with_max_entries(MAX_LIST_ENTRIES, 0);

#[map(name = "BANS_V4")]
pub static BANS_V4: LpmTrie<[u8; 4], u64> = LpmTrie::with_max_entries(MAX_BANS, 0);

#[map(name = "BANS_V6")]
pub static BANS_V6: LpmTrie<[u8; 16], u64> = LpmTrie::with_max_entries(MAX_BANS, 0);

#[map(name = "BAN_HORIZON")]
pub static BAN_HORIZON: Array<u64> = Array::with_max_entries(1, 0);
