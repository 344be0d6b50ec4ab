//! Response and value caching: `cache-lookup` / `cache-store`
//! (`lookup.rs`), `cache-lookup-value` / `cache-store-value` /
//! `cache-remove-value` (`value.rs`).
//!
//! Entries live in this gateway's memory (`state.rs`, bounded in bytes by
//! `limits.cache_memory_bytes`, kept across reloads) or in the node's
//! Redis (`[redis]`, the same link and settings as cluster rate limits),
//! shared by every gateway using it: `caching_type` picks (`internal`,
//! `external`, `prefer-external`: Redis when the node has one).
//!
//! Redis down, erring or slower than `redis.command_timeout_ms`: the
//! request is served from the backend as if there were no cache, counted
//! as a bypass (`edgegw_cache_bypass_total{reason="redis_down"}`); no
//! request waits on a Redis known to be down (`redis_link`).
//!
//! Concurrent misses of one key make one backend request: the others wait
//! for its answer to be stored (`coalesce`).

mod coalesce;
mod entry;
mod lookup;
mod state;
mod value;

use std::sync::Arc;

use gateway_model::policy::cache_lookup::CachingType;
pub use lookup::{CacheLookup, CacheStore, Pending, Tee, Wait};
pub use state::{CacheState, CacheView};
pub use value::{CacheLookupValue, CacheRemoveValue, CacheStoreValue};

use crate::{
    redis_link::RedisLink,
    state_registry::{Kind, Staging, StateRegistry},
};

/// Where a policy keeps its entries, and the counters it reports to.
#[derive(Clone)]
pub struct Store {
    state: Arc<CacheState>,
    /// `None`: this gateway's memory.
    redis: Option<Arc<RedisLink>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.redis.is_some() {
            "Store(redis)"
        } else {
            "Store(memory)"
        })
    }
}

impl Store {
    /// The store `caching_type` names for the policy at `place`; an
    /// `external` one on a node without Redis fails the build (`staging`).
    pub fn new(caching_type: CachingType, place: &str, staging: &mut Staging) -> Store {
        let bytes = staging.cache_memory_bytes();
        let state = staging.take(Kind::Cache, "memory".into(), || CacheState::new(bytes));
        state.resize(bytes);
        let redis = match (caching_type, staging.redis()) {
            (CachingType::Internal, _) => None,
            (_, Some(redis)) => Some(redis.clone()),
            (CachingType::External, None) => {
                staging.cache_lacks_redis(place);
                None
            }
            (CachingType::PreferExternal, None) => None,
        };
        Store { state, redis }
    }
}

/// Key of a response entry in Redis: the key's digest (keys hold the
/// path, headers and subscription; Redis needs none of it in clear).
fn redis_response_key(key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut out = String::from("edgegw:cache:r:");
    for b in &digest[..16] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Key of a `cache-store-value` entry in Redis.
fn redis_value_key(key: &str) -> String {
    format!("edgegw:cache:v:{key}")
}

/// The cache in service, if a policy uses it.
pub fn view(registry: &StateRegistry) -> Option<CacheView> {
    registry
        .each::<CacheState>(Kind::Cache)
        .first()
        .map(|c| c.view())
}

/// Prometheus lines of the cache in service, if a policy uses it.
pub fn render_metrics(registry: &StateRegistry, out: &mut String) {
    if let Some(cache) = registry.each::<CacheState>(Kind::Cache).first() {
        cache.render_metrics(out);
    }
}

/// Keeps the status file's `cache` current: rewritten once a second when
/// it changed.
pub async fn publish(registry: Arc<StateRegistry>, status: Arc<crate::status::StatusFile>) {
    let mut last = None;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = view(&registry);
        if now != last {
            status.update(|s| s.cache = now.clone());
            last = now;
        }
    }
}
