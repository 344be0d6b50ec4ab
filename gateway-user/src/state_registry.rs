//! Runtime state that outlives a `Gateway`: rate-limit, quota and
//! concurrency counters by policy place, backend connection pools by
//! backend, JWKS caches by URL, escalation windows by settings.
//!
//! Every configuration change (SIGHUP, a control-plane bundle) builds the
//! new gateway with a `Staging` from `StateRegistry::build`: each part asks
//! it for its state by kind and identity, and gets the running one when
//! that identity was in service, a fresh one otherwise. An identity names
//! everything the state depends on (a limit's place *and* its settings),
//! so a changed policy gets fresh state. `commit`, called once the new
//! gateway is swapped in, keeps exactly what that build took: the state of
//! changed or removed parts is dropped. A build (or swap) that fails never
//! commits: the running state stays as it was, and the old gateway keeps
//! using it.
//!
//! The `Staging` is handed explicitly to everything that builds runtimes
//! (`Gateway::build` → `Catalog::build` → `Policy::build`); it also hands
//! policies what the node gives them (the fleet counters, the Redis link
//! of cluster rate limits: the one in service while the settings are the
//! same, a new one put in service by the commit). Outside a
//! reload (unit tests, fuzz targets) `Staging::fresh()` makes every part
//! fresh.
//!
//! The registry stores state of any type (`Any`) and knows none of the
//! parts: policies and the proxy depend on it, never the other way round.

use std::{
    any::Any,
    collections::HashMap,
    sync::{Arc, Mutex},
};

use gateway_model::config::Redis as RedisConfig;

use crate::{
    fleet::Fleet,
    redis_link::{RedisLink, RedisSetupError, RedisSlot},
};

/// What a piece of state belongs to; with its identity, its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Rate-limit and quota counters.
    Limit,
    /// Requests in flight of `limit-concurrency`.
    Concurrency,
    /// A backend's clients and their connection pools.
    Pool,
    /// A backend pool's members' state and its health-check task.
    BackendPool,
    /// A JWKS (or OpenID configuration) key cache.
    Jwks,
    /// The L7 → XDP escalation tracker.
    Escalation,
    /// The in-memory response cache and the cache policies' counters.
    Cache,
    /// The token cache of the node's `[identity]`.
    Identity,
}

/// `limits.cache_memory_bytes` when no configuration set it (unit tests).
const DEFAULT_CACHE_MEMORY_BYTES: u64 = 64 * 1024 * 1024;

type Shared = Arc<dyn Any + Send + Sync>;

type Kept = HashMap<(Kind, String), Shared>;

/// The state of the running gateway, by kind and identity.
#[derive(Default)]
pub struct StateRegistry {
    running: Mutex<Arc<Kept>>,
    /// Fleet-wide quota counters, when a control plane is configured.
    fleet: Option<Arc<Fleet>>,
    /// The Redis link of cluster rate limits in service, if any.
    redis: Arc<RedisSlot>,
}

/// The state one build took; `commit` it once its gateway is in service.
#[must_use = "commit the state once the gateway is swapped in"]
pub struct Staged(Kept, PendingLink);

/// The Redis link a build uses. A new one that is never committed (the
/// build or the swap failed) is closed: nothing of it keeps running.
struct PendingLink {
    link: Option<Arc<RedisLink>>,
    slot: Arc<RedisSlot>,
}

impl Drop for PendingLink {
    fn drop(&mut self) {
        if let Some(link) = self.link.take() {
            self.slot.discard(&link);
        }
    }
}

/// A build in progress: the running state on offer, the state this build
/// took so far, and what the node hands the policies it builds.
pub struct Staging {
    running: Arc<Kept>,
    next: Kept,
    fleet: Option<Arc<Fleet>>,
    redis: PendingLink,
    /// Places of cluster rate limits built without a Redis to count in.
    without_redis: Vec<String>,
    /// Places of `caching_type: external` cache policies built without one.
    cache_without_redis: Vec<String>,
    /// `limits.cache_memory_bytes` of the configuration being built.
    cache_memory_bytes: u64,
    /// The catalog's named certificates, for `validate-client-certificate`.
    certificates: Arc<[gateway_model::catalog::NamedCertificate]>,
    /// The gateway's named backends (`set-backend-service backend-id`).
    backends: Vec<(String, Arc<crate::config::Backend>)>,
    /// The node's `[identity]`, for `authentication-managed-identity`.
    identity: Option<gateway_model::config::Identity>,
    /// Places of `authentication-managed-identity` built without one.
    without_identity: Vec<String>,
}

impl StateRegistry {
    /// A registry whose builds hand `fleet` to fleet-wide quotas and the
    /// link in `redis` (or a new one, see `Staging::use_redis`) to cluster
    /// rate limits.
    pub fn new(fleet: Option<Arc<Fleet>>, redis: Arc<RedisSlot>) -> StateRegistry {
        StateRegistry {
            running: Mutex::default(),
            fleet,
            redis,
        }
    }

    /// Runs `build` with the running state on offer. Callers serialise
    /// builds (one reload at a time): a build sees the last commit.
    pub fn build<T, E>(
        &self,
        build: impl FnOnce(&mut Staging) -> Result<T, E>,
    ) -> Result<(T, Staged), E> {
        let mut staging = Staging {
            running: self.running().clone(),
            next: Kept::default(),
            fleet: self.fleet.clone(),
            redis: PendingLink {
                link: None,
                slot: self.redis.clone(),
            },
            without_redis: Vec::new(),
            cache_without_redis: Vec::new(),
            cache_memory_bytes: DEFAULT_CACHE_MEMORY_BYTES,
            certificates: Arc::new([]),
            backends: Vec::new(),
            identity: None,
            without_identity: Vec::new(),
        };
        let built = build(&mut staging)?;
        Ok((built, Staged(staging.next, staging.redis)))
    }

    /// The new gateway is in service: its state becomes the running state,
    /// and state it did not take is dropped (once older gateways finish);
    /// its Redis link is the one in service.
    pub fn commit(&self, staged: Staged) {
        let Staged(kept, mut redis) = staged;
        *self.running() = Arc::new(kept);
        self.redis.install(redis.link.take());
    }

    /// How many pieces of state of `kind` the running gateway holds.
    pub fn held(&self, kind: Kind) -> usize {
        self.running().keys().filter(|(k, _)| *k == kind).count()
    }

    /// The running state of `kind` that is a `T`.
    pub fn each<T: Any + Send + Sync>(&self, kind: Kind) -> Vec<Arc<T>> {
        self.running()
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .filter_map(|(_, s)| s.clone().downcast::<T>().ok())
            .collect()
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Arc<Kept>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Staging {
    /// A build with nothing on offer and no fleet: every part fresh.
    pub fn fresh() -> Staging {
        Staging {
            running: Arc::default(),
            next: Kept::default(),
            fleet: None,
            redis: PendingLink {
                link: None,
                slot: Arc::default(),
            },
            without_redis: Vec::new(),
            cache_without_redis: Vec::new(),
            cache_memory_bytes: DEFAULT_CACHE_MEMORY_BYTES,
            certificates: Arc::new([]),
            backends: Vec::new(),
            identity: None,
            without_identity: Vec::new(),
        }
    }

    /// The catalog's named certificates, for the policies built next.
    pub fn use_certificates(&mut self, certificates: &[gateway_model::catalog::NamedCertificate]) {
        self.certificates = certificates.into();
    }

    /// The gateway's named backends, for the policies built next.
    pub fn use_backends(&mut self, backends: &[crate::config::NamedBackend]) {
        self.backends = backends
            .iter()
            .map(|(n, b)| (n.clone(), Arc::new(b.clone())))
            .collect();
    }

    /// The named backend `name`, if the gateway has it.
    pub fn backend(&self, name: &str) -> Option<Arc<crate::config::Backend>> {
        self.backends
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
    }

    pub fn certificates(&self) -> &[gateway_model::catalog::NamedCertificate] {
        &self.certificates
    }

    /// Cluster rate limits of this build count in the Redis of `config`
    /// (the node's `[redis]` or the bundle's): the link in service when
    /// the settings are unchanged, else a new one (connecting in the
    /// background), in service from the commit. Call inside the runtime.
    pub fn use_redis(&mut self, config: Option<&RedisConfig>) -> Result<(), RedisSetupError> {
        let link = self.redis.slot.link_for(config)?;
        if let Some(old) = std::mem::replace(&mut self.redis.link, link) {
            self.redis.slot.discard(&old);
        }
        Ok(())
    }

    /// The Redis link cluster rate limits count in, if any.
    pub fn redis(&self) -> Option<&Arc<RedisLink>> {
        self.redis.link.as_ref()
    }

    /// A cluster rate limit at `place` found no Redis: the build must fail.
    pub fn lacks_redis(&mut self, place: &str) {
        self.without_redis.push(place.to_string());
    }

    /// The first cluster rate limit built without a Redis, if any.
    pub fn first_without_redis(&self) -> Option<&str> {
        self.without_redis.first().map(String::as_str)
    }

    /// A cache policy at `place` must cache in Redis and found none: the
    /// build must fail.
    pub fn cache_lacks_redis(&mut self, place: &str) {
        self.cache_without_redis.push(place.to_string());
    }

    /// The first `caching_type: external` policy built without a Redis.
    pub fn first_cache_without_redis(&self) -> Option<&str> {
        self.cache_without_redis.first().map(String::as_str)
    }

    /// The node's `[identity]`, for the policies built next.
    pub fn use_identity(&mut self, identity: Option<&gateway_model::config::Identity>) {
        self.identity = identity.cloned();
    }

    pub fn identity(&self) -> Option<&gateway_model::config::Identity> {
        self.identity.as_ref()
    }

    /// An `authentication-managed-identity` at `place` found no
    /// `[identity]`: the build must fail.
    pub fn lacks_identity(&mut self, place: &str) {
        self.without_identity.push(place.to_string());
    }

    pub fn first_without_identity(&self) -> Option<&str> {
        self.without_identity.first().map(String::as_str)
    }

    /// The bound of the in-memory response cache this build uses.
    pub fn set_cache_memory_bytes(&mut self, bytes: u64) {
        self.cache_memory_bytes = bytes;
    }

    pub fn cache_memory_bytes(&self) -> u64 {
        self.cache_memory_bytes
    }

    /// The fleet counters call quotas count against, if any.
    pub fn fleet(&self) -> Option<&Arc<Fleet>> {
        self.fleet.as_ref()
    }

    /// The state of `kind` under `identity`: the one this build already
    /// took, else the running one, else `fresh()`.
    pub fn take<T: Any + Send + Sync>(
        &mut self,
        kind: Kind,
        identity: String,
        fresh: impl FnOnce() -> T,
    ) -> Arc<T> {
        let made: Result<_, std::convert::Infallible> =
            self.try_take(kind, identity, || Ok(fresh()));
        made.unwrap_or_else(|e| match e {})
    }

    /// `take`, for state whose making may fail.
    pub fn try_take<T: Any + Send + Sync, E>(
        &mut self,
        kind: Kind,
        identity: String,
        make: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let key = (kind, identity);
        let kept = self.next.get(&key).or_else(|| self.running.get(&key));
        // A kind holds one type: a mismatch would be a bug, and gets fresh
        // state rather than a panic.
        let state = match kept.and_then(|s| s.clone().downcast::<T>().ok()) {
            Some(state) => state,
            None => Arc::new(make()?),
        };
        self.next.insert(key, state.clone());
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Counter = Arc<Mutex<u64>>;

    /// One "gateway": a counter per (place, settings).
    fn build(
        registry: &StateRegistry,
        policies: &[(&str, u64)],
    ) -> Result<(Vec<Counter>, Staged), String> {
        registry.build(|s| {
            Ok(policies
                .iter()
                .map(|(place, calls)| {
                    s.take(Kind::Limit, format!("{place}|calls={calls}"), || {
                        Mutex::new(0)
                    })
                })
                .collect())
        })
    }

    #[test]
    fn unchanged_parts_keep_their_state_changed_and_removed_do_not() {
        let registry = StateRegistry::default();
        let (first, staged) = build(&registry, &[("a/0", 5), ("b/0", 5), ("c/0", 5)]).unwrap();
        registry.commit(staged);
        let (second, staged) = build(&registry, &[("a/0", 5), ("b/0", 9)]).unwrap();
        registry.commit(staged);
        assert!(Arc::ptr_eq(&first[0], &second[0]), "unchanged: carried");
        assert!(!Arc::ptr_eq(&first[1], &second[1]), "new limit: fresh");
        assert_eq!(registry.held(Kind::Limit), 2, "removed part dropped");
        // Dropped means dropped: it comes back fresh.
        let (third, _) = build(&registry, &[("c/0", 5)]).unwrap();
        assert!(!Arc::ptr_eq(&first[2], &third[0]));
    }

    #[test]
    fn a_failed_build_leaves_the_running_state_untouched() {
        let registry = StateRegistry::default();
        let (first, staged) = build(&registry, &[("a/0", 5)]).unwrap();
        registry.commit(staged);
        let failed: Result<((), Staged), String> = registry.build(|s| {
            s.take(Kind::Limit, "a/0|calls=7".into(), || 7u64);
            s.take(Kind::Limit, "z/0|calls=1".into(), || 1u64);
            Err("invalid".into())
        });
        assert!(failed.is_err());
        assert_eq!(registry.held(Kind::Limit), 1);
        // A build that succeeded but was never committed changes nothing either.
        let _uncommitted = build(&registry, &[("b/0", 1)]).unwrap();
        let (again, _) = build(&registry, &[("a/0", 5)]).unwrap();
        assert!(Arc::ptr_eq(&first[0], &again[0]));
    }

    #[test]
    fn one_build_shares_one_state_per_identity_and_kinds_do_not_mix() {
        let registry = StateRegistry::default();
        let ((a, b, c), _) = registry
            .build(|s| {
                Ok::<_, ()>((
                    s.take(Kind::Jwks, "u".into(), || 1u8),
                    s.take(Kind::Jwks, "u".into(), || 2u8),
                    s.take(Kind::Pool, "u".into(), || 3u8),
                ))
            })
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!((*a, *c), (1, 3));
        let (mut one, mut two) = (Staging::fresh(), Staging::fresh());
        assert!(!Arc::ptr_eq(
            &one.take(Kind::Jwks, "u".into(), || 1u8),
            &two.take(Kind::Jwks, "u".into(), || 1u8)
        ));
    }

    #[test]
    fn failing_to_make_state_takes_nothing() {
        let mut s = Staging::fresh();
        let made: Result<Arc<u8>, &str> = s.try_take(Kind::Pool, "p".into(), || Err("no CA"));
        assert_eq!(made.unwrap_err(), "no CA");
        assert!(s.next.is_empty());
    }
}
