//! The gateway's in-memory cache and the counters of every cache policy.
//! One per gateway, kept in the state registry (`Kind::Cache`): reloads
//! keep its entries and counts; a changed `limits.cache_memory_bytes`
//! resizes it in place.
//!
//! quick_cache (CLOCK-Pro, sharded) bounds it in bytes: each entry weighs
//! its key, headers and body; past the bound the least used go, counted as
//! evictions. Expiry is checked on read (an expired entry is removed and
//! is a miss).

use std::{
    fmt::Write,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;

use super::{
    coalesce::{Flights, Joined},
    entry::{Stored, now_ms},
};
pub use crate::status::CacheView;

/// What a key holds in memory.
#[derive(Clone)]
pub enum Item {
    Response(Arc<Stored>),
    Value { value: Bytes, expires_ms: u64 },
}

impl Item {
    fn expires_ms(&self) -> u64 {
        match self {
            Item::Response(r) => r.expires_ms,
            Item::Value { expires_ms, .. } => *expires_ms,
        }
    }
}

#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<String, Item> for Weight {
    fn weight(&self, key: &String, item: &Item) -> u64 {
        key.len() as u64
            + match item {
                Item::Response(r) => r.weight(),
                Item::Value { value, .. } => value.len() as u64 + 48,
            }
    }
}

/// Counts the entries the bound pushed out.
#[derive(Clone, Default)]
struct Evictions(Arc<AtomicU64>);

impl quick_cache::Lifecycle<String, Item> for Evictions {
    type RequestState = ();

    fn on_evict(&self, _: &mut (), _key: String, _item: Item) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

type Memory =
    quick_cache::sync::Cache<String, Item, Weight, quick_cache::DefaultHashBuilder, Evictions>;

/// Where an entry was looked up or stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Memory,
    Redis,
}

/// Why a request did not use the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bypass {
    /// Redis down, erring or slower than `redis.command_timeout_ms`.
    RedisDown,
    /// Not GET or HEAD.
    Method,
    /// The request carries `Authorization` (without
    /// `allow_private_response_caching`).
    Authorization,
}

/// Why a response that could have been stored was not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotStored {
    Status,
    NoStore,
    Private,
    SetCookie,
    TooLarge,
}

#[derive(Default)]
struct Counters {
    hits: [AtomicU64; 2],
    misses: [AtomicU64; 2],
    stores: [AtomicU64; 2],
    bypass: [AtomicU64; 3],
    not_stored: [AtomicU64; 5],
    /// Requests that waited on another's miss of the same key.
    coalesced: AtomicU64,
}

pub struct CacheState {
    memory: Memory,
    evictions: Arc<AtomicU64>,
    counters: Counters,
    /// Misses on their way to the backend (see `coalesce`).
    flights: Arc<Flights>,
}

impl CacheState {
    pub fn new(capacity_bytes: u64) -> CacheState {
        let evictions = Evictions::default();
        let options = quick_cache::OptionsBuilder::new()
            .weight_capacity(capacity_bytes)
            // A guess at 4 KiB per entry; the bound is the weight.
            .estimated_items_capacity((capacity_bytes / 4096).max(16) as usize)
            .build()
            .expect("weight and item capacities are set");
        CacheState {
            memory: Memory::with_options(options, Weight, Default::default(), evictions.clone()),
            evictions: evictions.0,
            counters: Counters::default(),
            flights: Arc::default(),
        }
    }

    /// A new bound, entries kept (the least used go if it shrank).
    pub fn resize(&self, capacity_bytes: u64) {
        if self.memory.capacity() != capacity_bytes {
            self.memory.set_capacity(capacity_bytes);
        }
    }

    /// Largest entry memory takes: a shard's share of the bound, halved
    /// (quick_cache refuses what outweighs a shard).
    pub fn max_entry_bytes(&self) -> u64 {
        self.memory.shard_capacity() / 2
    }

    /// The fresh item under `key`; an expired one is removed.
    pub fn get(&self, key: &str) -> Option<Item> {
        let item = self.memory.get(key)?;
        if item.expires_ms() <= now_ms() {
            self.memory.remove(key);
            return None;
        }
        Some(item)
    }

    pub fn insert(&self, key: String, item: Item) {
        self.memory.insert(key, item);
    }

    pub fn remove(&self, key: &str) {
        self.memory.remove(key);
    }

    /// After a miss of `key`: lead its fetch, or wait on the leader's.
    pub fn join(&self, key: &str) -> Joined {
        let joined = self.flights.join(key);
        if matches!(joined, Joined::Follower(_)) {
            self.counters.coalesced.fetch_add(1, Ordering::Relaxed);
        }
        joined
    }

    pub fn hit(&self, place: Place) {
        self.counters.hits[place as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn miss(&self, place: Place) {
        self.counters.misses[place as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn stored(&self, place: Place) {
        self.counters.stores[place as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn bypass(&self, why: Bypass) {
        self.counters.bypass[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn not_stored(&self, why: NotStored) {
        self.counters.not_stored[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn view(&self) -> CacheView {
        let sum = |a: &[AtomicU64]| a.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        let c = &self.counters;
        CacheView {
            memory_bytes: self.memory.weight(),
            memory_capacity_bytes: self.memory.capacity(),
            memory_entries: self.memory.len() as u64,
            hits: sum(&c.hits),
            misses: sum(&c.misses),
            stores: sum(&c.stores),
            evictions: self.evictions.load(Ordering::Relaxed),
            bypassed: sum(&c.bypass),
            bypassed_redis_down: c.bypass[Bypass::RedisDown as usize].load(Ordering::Relaxed),
        }
    }

    /// Prometheus lines.
    pub fn render_metrics(&self, out: &mut String) {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let places = ["memory", "redis"];
        for (name, help, counts) in [
            (
                "hits",
                "Requests answered from the response cache.",
                &c.hits,
            ),
            (
                "misses",
                "Cacheable requests the response cache had no fresh entry for.",
                &c.misses,
            ),
            (
                "stores",
                "Responses and values stored in the cache.",
                &c.stores,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP edgegw_cache_{name}_total {help}\n# TYPE edgegw_cache_{name}_total counter"
            );
            for (place, count) in places.iter().zip(counts) {
                let _ = writeln!(
                    out,
                    "edgegw_cache_{name}_total{{store=\"{place}\"}} {}",
                    get(count)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP edgegw_cache_bypass_total Requests that did not use the cache, by reason.\n# TYPE edgegw_cache_bypass_total counter"
        );
        for (reason, count) in ["redis_down", "method", "authorization"]
            .iter()
            .zip(&c.bypass)
        {
            let _ = writeln!(
                out,
                "edgegw_cache_bypass_total{{reason=\"{reason}\"}} {}",
                get(count)
            );
        }
        let _ = writeln!(
            out,
            "# HELP edgegw_cache_not_stored_total Responses cache-store did not keep, by reason.\n# TYPE edgegw_cache_not_stored_total counter"
        );
        for (reason, count) in ["status", "no_store", "private", "set_cookie", "too_large"]
            .iter()
            .zip(&c.not_stored)
        {
            let _ = writeln!(
                out,
                "edgegw_cache_not_stored_total{{reason=\"{reason}\"}} {}",
                get(count)
            );
        }
        let _ = writeln!(
            out,
            "# HELP edgegw_cache_coalesced_total Requests that missed while another request for the same key was on its way to the backend, and waited for its answer.\n# TYPE edgegw_cache_coalesced_total counter\nedgegw_cache_coalesced_total {}",
            get(&c.coalesced)
        );
        let _ = writeln!(
            out,
            "# HELP edgegw_cache_evictions_total Entries the in-memory cache's byte bound pushed out.\n# TYPE edgegw_cache_evictions_total counter\nedgegw_cache_evictions_total {}\n\
             # HELP edgegw_cache_memory_bytes Bytes the in-memory cache holds.\n# TYPE edgegw_cache_memory_bytes gauge\nedgegw_cache_memory_bytes {}\n\
             # HELP edgegw_cache_memory_capacity_bytes The in-memory cache's bound (limits.cache_memory_bytes).\n# TYPE edgegw_cache_memory_capacity_bytes gauge\nedgegw_cache_memory_capacity_bytes {}\n\
             # HELP edgegw_cache_memory_entries Entries in the in-memory cache.\n# TYPE edgegw_cache_memory_entries gauge\nedgegw_cache_memory_entries {}",
            self.evictions.load(Ordering::Relaxed),
            self.memory.weight(),
            self.memory.capacity(),
            self.memory.len(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(n: usize, ttl_ms: u64) -> Item {
        Item::Value {
            value: Bytes::from(vec![b'x'; n]),
            expires_ms: now_ms() + ttl_ms,
        }
    }

    #[test]
    fn bounded_in_bytes_evictions_counted_expiry_checked() {
        let cache = CacheState::new(256 * 1024);
        for i in 0..200 {
            cache.insert(format!("k{i}"), value(4096, 60_000));
        }
        let view = cache.view();
        assert!(view.memory_bytes <= 256 * 1024, "{view:?}");
        assert!(view.evictions > 0, "{view:?}");
        cache.insert("short".into(), value(1, 0));
        assert!(cache.get("short").is_none(), "expired");
        cache.insert("long".into(), value(1, 60_000));
        assert!(cache.get("long").is_some());
        cache.resize(128 * 1024);
        assert_eq!(cache.view().memory_capacity_bytes, 128 * 1024);
    }
}
