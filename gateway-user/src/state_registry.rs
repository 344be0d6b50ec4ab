//! Runtime state that outlives a `Gateway`: rate-limit, quota and
//! concurrency counters by policy place, backend connection pools by
//! backend, JWKS caches by URL, escalation windows by settings.
//!
//! Every configuration change (SIGHUP, a control-plane bundle) builds the
//! new gateway inside `StateRegistry::build`: each part asks for its state
//! by identity and gets the running one when its settings are unchanged,
//! a fresh one when they changed. `commit`, called once the new gateway is
//! swapped in, keeps exactly what that build took, so the state of changed
//! or removed policies and backends is dropped. A build (or swap) that
//! fails never commits: the running state stays as it was, and the old
//! gateway keeps using it.
//!
//! Policy runtimes are built inside catalog validation, which knows nothing
//! of the registry; they reach the build in progress through a thread-local
//! scope (set only for the duration of `build`, on the building thread).
//! Outside a build (`config validate`, unit tests) every part is fresh.

use std::{
    cell::RefCell,
    collections::HashMap,
    hash::Hash,
    path::PathBuf,
    sync::{Arc, Mutex, atomic::AtomicUsize},
    time::Duration,
};

use crate::{
    config::{Backend, BackendProtocol, Escalation},
    policy::{
        counters::Counters,
        jwt::jwks::{Jwks, Source},
    },
    proxy::{backend::Clients, escalate::Escalator},
};

/// The state of the running gateway, by identity.
#[derive(Default)]
pub struct StateRegistry {
    running: Mutex<Arc<Kept>>,
}

#[derive(Default)]
struct Kept {
    /// By policy place: (the settings that shape the counters, counters).
    limits: HashMap<String, (String, Arc<Counters>)>,
    /// By policy place: requests in flight.
    concurrency: HashMap<String, Arc<AtomicUsize>>,
    pools: HashMap<PoolKey, Arc<Clients>>,
    jwks: HashMap<Source, Arc<Jwks>>,
    /// By settings and interface (`Escalation` is compared as its debug text).
    escalation: HashMap<String, Arc<Escalator>>,
}

/// What a backend's connections depend on: a change of base path or
/// response timeout keeps the pool, a change of address or TLS does not.
#[derive(Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    scheme: String,
    authority: String,
    protocol: BackendProtocol,
    /// The CA file and its contents: a replaced CA file builds a new pool.
    ca: Option<(PathBuf, Option<Vec<u8>>)>,
    connect_timeout: Duration,
}

impl PoolKey {
    fn of(b: &Backend) -> PoolKey {
        PoolKey {
            scheme: b.scheme.clone(),
            authority: b.authority.clone(),
            protocol: b.protocol,
            ca: b
                .ca_file
                .as_ref()
                .map(|p| (p.clone(), std::fs::read(p).ok())),
            connect_timeout: b.connect_timeout,
        }
    }
}

/// The state one build took; `commit` it once its gateway is in service.
#[must_use = "commit the state once the gateway is swapped in"]
pub struct Staged(Kept);

/// How much state the running gateway holds, per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Held {
    pub limits: usize,
    pub concurrency: usize,
    pub pools: usize,
    pub jwks: usize,
    pub escalation: usize,
}

struct Building {
    running: Arc<Kept>,
    next: Kept,
}

thread_local! {
    static BUILDING: RefCell<Option<Building>> = const { RefCell::new(None) };
}

/// Ends the build scope even when the build panics.
struct Scope;

impl Drop for Scope {
    fn drop(&mut self) {
        BUILDING.with_borrow_mut(Option::take);
    }
}

impl StateRegistry {
    /// Runs `build` with the running state on offer. Callers serialise
    /// builds (one reload at a time): a build sees the last commit.
    pub fn build<T, E>(&self, build: impl FnOnce() -> Result<T, E>) -> Result<(T, Staged), E> {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        BUILDING.with_borrow_mut(|b| {
            assert!(b.is_none(), "gateway builds do not nest");
            *b = Some(Building {
                running,
                next: Kept::default(),
            });
        });
        let scope = Scope;
        let built = build()?;
        let next = BUILDING
            .with_borrow_mut(Option::take)
            .expect("the build scope is set")
            .next;
        drop(scope);
        Ok((built, Staged(next)))
    }

    /// The new gateway is in service: its state becomes the running state,
    /// and state it did not take is dropped (once older gateways finish).
    pub fn commit(&self, staged: Staged) {
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(staged.0);
    }

    pub fn held(&self) -> Held {
        let k = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Held {
            limits: k.limits.len(),
            concurrency: k.concurrency.len(),
            pools: k.pools.len(),
            jwks: k.jwks.len(),
            escalation: k.escalation.len(),
        }
    }
}

/// The state under `key` in the build in progress: the one this build
/// already took, else the running one if `reuse` accepts it, else `make`'s.
fn take<K: Eq + Hash, V: Clone, E>(
    map: fn(&Kept) -> &HashMap<K, V>,
    map_mut: fn(&mut Kept) -> &mut HashMap<K, V>,
    key: K,
    reuse: impl FnOnce(&V) -> bool,
    make: impl FnOnce() -> Result<V, E>,
) -> Result<V, E> {
    BUILDING.with_borrow_mut(|building| {
        let Some(b) = building else { return make() };
        if let Some(v) = map(&b.next).get(&key) {
            return Ok(v.clone());
        }
        let v = match map(&b.running).get(&key).filter(|v| reuse(v)) {
            Some(v) => v.clone(),
            None => make()?,
        };
        map_mut(&mut b.next).insert(key, v.clone());
        Ok(v)
    })
}

/// The counters of the rate limit or quota at `place`; carried over while
/// `identity` (its limit, window, counter key and bound) is unchanged.
pub fn limit_counters(
    place: &str,
    identity: &str,
    fresh: impl FnOnce() -> Arc<Counters>,
) -> Arc<Counters> {
    let got: Result<_, std::convert::Infallible> = take(
        |k| &k.limits,
        |k| &mut k.limits,
        place.to_string(),
        |(kept, _)| kept == identity,
        || Ok((identity.to_string(), fresh())),
    );
    got.map_or_else(|e| match e {}, |(_, c)| c)
}

/// The in-flight count of the `limit-concurrency` at `place`: always
/// carried over, as the requests it counts are still running whatever the
/// new `max_count` is.
pub fn concurrency(place: &str, fresh: impl FnOnce() -> Arc<AtomicUsize>) -> Arc<AtomicUsize> {
    let got: Result<_, std::convert::Infallible> = take(
        |k| &k.concurrency,
        |k| &mut k.concurrency,
        place.to_string(),
        |_| true,
        || Ok(fresh()),
    );
    got.unwrap_or_else(|e| match e {})
}

/// The clients (and connection pools) of `backend`.
pub(crate) fn backend_clients<E>(
    backend: &Backend,
    make: impl FnOnce() -> Result<Clients, E>,
) -> Result<Arc<Clients>, E> {
    take(
        |k| &k.pools,
        |k| &mut k.pools,
        PoolKey::of(backend),
        |_| true,
        || make().map(Arc::new),
    )
}

/// The key cache of a JWKS (or OpenID configuration) URL.
pub(crate) fn jwks(source: &Source, fresh: impl FnOnce() -> Jwks) -> Arc<Jwks> {
    let got: Result<_, std::convert::Infallible> = take(
        |k| &k.jwks,
        |k| &mut k.jwks,
        source.clone(),
        |_| true,
        || Ok(Arc::new(fresh())),
    );
    got.unwrap_or_else(|e| match e {})
}

/// The escalation tracker; its windows restart when its settings change.
pub(crate) fn escalator(
    settings: &Escalation,
    iface: &str,
    fresh: impl FnOnce() -> Escalator,
) -> Arc<Escalator> {
    let got: Result<_, std::convert::Infallible> = take(
        |k| &k.escalation,
        |k| &mut k.escalation,
        format!("{settings:?}|{iface}"),
        |_| true,
        || Ok(Arc::new(fresh())),
    );
    got.unwrap_or_else(|e| match e {})
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::policy::counters::{Allowance, Decision};

    fn counters(calls: u64) -> Arc<Counters> {
        let allowance = Allowance {
            calls: Some(calls),
            bytes: None,
        };
        Arc::new(Counters::new(allowance, Duration::from_secs(60), 10))
    }

    /// One "gateway": the counters of the given (place, calls) policies.
    fn build(
        registry: &StateRegistry,
        policies: &[(&str, u64)],
    ) -> Result<(Vec<Arc<Counters>>, Staged), String> {
        registry.build(|| {
            Ok(policies
                .iter()
                .map(|(place, calls)| {
                    limit_counters(place, &format!("calls={calls}"), || counters(*calls))
                })
                .collect())
        })
    }

    #[test]
    fn unchanged_policies_keep_their_counters_changed_and_removed_do_not() {
        let registry = StateRegistry::default();
        let (first, staged) = build(&registry, &[("a/0", 5), ("b/0", 5), ("c/0", 5)]).unwrap();
        registry.commit(staged);
        let now = Instant::now();
        for c in &first {
            c.hit("k", now);
        }
        let (second, staged) = build(&registry, &[("a/0", 5), ("b/0", 9)]).unwrap();
        registry.commit(staged);
        assert!(
            Arc::ptr_eq(&first[0], &second[0]),
            "unchanged: carried over"
        );
        assert!(!Arc::ptr_eq(&first[1], &second[1]), "new limit: rebuilt");
        assert!(matches!(
            second[1].hit("k", now),
            Decision::Allowed {
                remaining: Some(8),
                ..
            }
        ));
        assert_eq!(registry.held().limits, 2, "removed policy dropped");
        // Dropped means dropped: it comes back fresh.
        let (third, _) = build(&registry, &[("c/0", 5)]).unwrap();
        assert!(!Arc::ptr_eq(&first[2], &third[0]));
    }

    #[test]
    fn a_failed_build_leaves_the_running_state_untouched() {
        let registry = StateRegistry::default();
        let (first, staged) = build(&registry, &[("a/0", 5)]).unwrap();
        registry.commit(staged);
        let failed: Result<((), Staged), String> = registry.build(|| {
            limit_counters("a/0", "calls=7", || counters(7));
            limit_counters("z/0", "calls=1", || counters(1));
            Err("invalid".into())
        });
        assert!(failed.is_err());
        assert_eq!(registry.held().limits, 1);
        // A build that succeeded but was never committed changes nothing either.
        let _uncommitted = build(&registry, &[("b/0", 1)]).unwrap();
        let (again, _) = build(&registry, &[("a/0", 5)]).unwrap();
        assert!(Arc::ptr_eq(&first[0], &again[0]));
    }

    #[test]
    fn one_build_shares_one_state_per_identity_and_outside_builds_all_is_fresh() {
        let registry = StateRegistry::default();
        let source = Source {
            url: "http://127.0.0.1:9/jwks".into(),
            openid: false,
        };
        let fresh = || Jwks::new(source.clone(), crate::policy::jwt::jwks::TIMING);
        let ((a, b), _) = registry
            .build(|| Ok::<_, ()>((jwks(&source, fresh), jwks(&source, fresh))))
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&jwks(&source, fresh), &jwks(&source, fresh)));
    }
}
