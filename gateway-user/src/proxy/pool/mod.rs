//! Backend pools: a `[[backends]]` entry with several members. Per
//! request a member is chosen (`balance`: priority groups, then weighted
//! round robin or least requests) among those available: healthy by the
//! active checks (`health`), not ejected for failing live traffic, and
//! with a closed circuit breaker (`breaker`) — per-member state in
//! `member`. An idempotent request without a body that got no answer from
//! one member (connect failure or a dropped connection) is sent once more
//! to another. With no member available the proxy answers 503 with
//! `Retry-After`. A member is one address: a host name that resolves to
//! several is a member per address, each with the configured weight, and
//! names are resolved again every `resolve_interval` (`addresses`).
//!
//! The pool's state (and its tasks) is kept across reloads by
//! the state registry, under the backend's identity and the pool's
//! settings: an unchanged pool keeps its members' state.

mod addresses;
mod balance;
mod breaker;
mod health;
mod member;

use std::{
    collections::HashMap,
    fmt::Write,
    net::SocketAddr,
    sync::{Arc, Mutex, atomic::Ordering},
    time::Duration,
};

use arc_swap::ArcSwap;

use super::{
    RequestBody,
    backend::{Answer, Clients, Outgoing, send_on},
    backend_error::BackendError,
    h1_client::Dialer,
};
use crate::{
    clock::coarse_monotonic,
    config::{Backend, pool::PoolSpec},
};
use balance::Balancer;
use member::Member;

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error(
        "backend \"{backend}\": member \"{member}\" cannot be resolved ({why}); fix the host name or use an IP address"
    )]
    Unresolvable {
        backend: String,
        member: String,
        why: String,
    },
    #[error("backend \"{backend}\": member \"{member}\": {why}")]
    Member {
        backend: String,
        member: String,
        why: String,
    },
}

/// A pool in service: its members' state and its tasks (health checks,
/// re-resolution), aborted when the last gateway using the pool lets it go.
pub struct PoolState {
    inner: Arc<Inner>,
    /// The task resolving the members' host names again, if any is a name.
    resolver: Option<tokio::task::AbortHandle>,
}

pub struct Inner {
    /// The `[[backends]]` name.
    pub name: Arc<str>,
    spec: Arc<PoolSpec>,
    /// The members in service, one per address; replaced whole when a
    /// re-resolution finds addresses appearing or gone.
    set: ArcSwap<MemberSet>,
    /// The pool's backend: each member is a copy with its own authority.
    base: Backend,
    /// TLS settings of the health checks (https pools).
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Each member's health-check task, by member and address.
    checkers: Mutex<HashMap<(String, SocketAddr), tokio::task::AbortHandle>>,
    /// The pool's clock: milliseconds since this (coarse monotonic) time;
    /// ejections and breakers count in seconds, and a request reads it
    /// twice.
    epoch: Duration,
}

/// The members and the balancer's state over them.
pub struct MemberSet {
    pub members: Vec<Arc<Member>>,
    balancer: Balancer,
}

impl Drop for PoolState {
    fn drop(&mut self) {
        if let Some(task) = &self.resolver {
            task.abort();
        }
        let checkers = self
            .inner
            .checkers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for task in checkers.values() {
            task.abort();
        }
    }
}

impl PoolState {
    /// The identity its state is kept under across reloads.
    pub fn identity(connections: &str, spec: &PoolSpec) -> String {
        format!("{connections} {spec:?}")
    }

    /// `base`: the pool's backend. Every member must resolve now: a typo
    /// is refused when the configuration loads, not found by the first
    /// request. Starts the health checks and the re-resolution on the
    /// current runtime, if any.
    pub(crate) fn new(
        spec: &Arc<PoolSpec>,
        base: &Backend,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<PoolState, PoolError> {
        let mut inner = Inner {
            name: spec.name.as_str().into(),
            spec: spec.clone(),
            set: ArcSwap::from_pointee(MemberSet::new(spec, Vec::new())),
            base: base.clone(),
            tls,
            checkers: Mutex::new(HashMap::new()),
            epoch: coarse_monotonic(),
        };
        let mut members = Vec::new();
        let mut names = false;
        for m in &spec.members {
            let address = addresses::with_port(&m.authority, &base.scheme);
            let resolved = match addresses::literal(&address) {
                Some(one) => vec![one],
                None => {
                    names = true;
                    addresses::resolve_blocking(&address).map_err(|e| PoolError::Unresolvable {
                        backend: spec.name.clone(),
                        member: m.authority.clone(),
                        why: e.to_string(),
                    })?
                }
            };
            if resolved.is_empty() {
                return Err(PoolError::Unresolvable {
                    backend: spec.name.clone(),
                    member: m.authority.clone(),
                    why: "no address".into(),
                });
            }
            for at in resolved {
                members.push(Arc::new(inner.member(m, at)?));
            }
        }
        inner.set = ArcSwap::from_pointee(MemberSet::new(spec, members));
        let inner = Arc::new(inner);
        let mut resolver = None;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let _entered = runtime.enter();
            inner.check(&inner.set.load().members);
            if names {
                let task = runtime.spawn(re_resolve(inner.clone()));
                resolver = Some(task.abort_handle());
            }
        }
        Ok(PoolState { inner, resolver })
    }

    /// Sends the request to a member; see the module's comment.
    pub async fn send(
        &self,
        out: &Outgoing,
        body: RequestBody,
        upgrade: bool,
        read_timeout: Duration,
    ) -> Result<Answer, BackendError> {
        use http_body_util::BodyExt;
        use hyper::body::Body;
        let pool = &*self.inner;
        let Some(mut member) = pool.pick(None) else {
            return Err(pool.unavailable());
        };
        let replayable = !upgrade && body.is_end_stream() && out.method.is_idempotent();
        let mut body = Some(body);
        // One attempt, and one more on another member: a loop, so that the
        // request's future holds one attempt's.
        loop {
            let first = body.is_some();
            let sent = body.take().unwrap_or_else(|| {
                http_body_util::Empty::<bytes::Bytes>::new()
                    .map_err(|never| match never {})
                    .boxed_unsync()
            });
            let result = pool
                .attempt(&member, out, sent, upgrade, read_timeout)
                .await;
            match result {
                Err(BackendError::Connect(_) | BackendError::Failed(_)) if replayable && first => {
                    let Some(next) = pool.pick(Some(&member)) else {
                        return result;
                    };
                    next.retries.fetch_add(1, Ordering::Relaxed);
                    member = next;
                }
                result => return result,
            }
        }
    }

    pub fn view(&self) -> PoolView {
        self.inner.view()
    }
}

impl MemberSet {
    fn new(spec: &PoolSpec, members: Vec<Arc<Member>>) -> MemberSet {
        MemberSet {
            balancer: Balancer::new(spec.balance, members.len()),
            members,
        }
    }
}

/// Resolves the members' host names every `resolve_interval`.
async fn re_resolve(pool: Arc<Inner>) {
    let mut tick = tokio::time::interval(pool.spec.resolve_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        pool.refresh().await;
    }
}

/// Decrements a member's outstanding count however the attempt ends.
struct InFlight<'a>(&'a Member);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Inner {
    fn now(&self) -> u64 {
        coarse_monotonic().saturating_sub(self.epoch).as_millis() as u64
    }

    /// The member for the next request, other than `exclude`.
    fn pick(&self, exclude: Option<&Arc<Member>>) -> Option<Arc<Member>> {
        let set = self.set.load();
        let skip = exclude.and_then(|x| set.members.iter().position(|m| Arc::ptr_eq(m, x)));
        let i = set.balancer.pick(&set.members, self.now(), skip)?;
        Some(set.members[i].clone())
    }

    /// A member for one address of configured member `m`.
    fn member(&self, m: &crate::config::pool::Member, at: SocketAddr) -> Result<Member, PoolError> {
        let mut one = self.base.clone();
        one.pool = None;
        one.authority = m.authority.clone();
        let clients = Clients::new(&one, Some(at)).map_err(|e| PoolError::Member {
            backend: self.spec.name.clone(),
            member: m.authority.clone(),
            why: e.to_string(),
        })?;
        Ok(Member::new(m, at, one, Arc::new(clients)))
    }

    /// Starts the health checks of `members` (on the current runtime).
    fn check(&self, members: &[Arc<Member>]) {
        let Some(check) = &self.spec.health_check else {
            return;
        };
        let mut checkers = self.checkers.lock().unwrap_or_else(|e| e.into_inner());
        for m in members {
            let dialer = match Dialer::new(&m.authority, self.tls.clone(), check.timeout) {
                Ok(d) => d.pinned(Some(m.address)),
                Err(why) => {
                    tracing::warn!(backend = %self.name, member = %m.authority, reason = %why, "pool member cannot be health-checked");
                    continue;
                }
            };
            let task = tokio::spawn(health::run(
                self.name.clone(),
                m.clone(),
                check.clone(),
                dialer,
            ));
            if let Some(old) =
                checkers.insert((m.authority.clone(), m.address), task.abort_handle())
            {
                old.abort();
            }
        }
    }

    /// Resolves every member's host name again: an address that appeared
    /// becomes a member (healthy until its checks say otherwise), one that
    /// is gone leaves with its state; the others keep theirs. A name that
    /// fails to resolve keeps its last addresses.
    async fn refresh(&self) {
        let current = self.set.load_full();
        let mut next: Vec<Arc<Member>> = Vec::with_capacity(current.members.len());
        let mut added = Vec::new();
        let mut changed = false;
        for m in &self.spec.members {
            let had = current
                .members
                .iter()
                .filter(|x| x.authority == m.authority);
            let address = addresses::with_port(&m.authority, &self.base.scheme);
            let resolved = if addresses::literal(&address).is_some() {
                Err(None)
            } else {
                match addresses::resolve(&address).await {
                    Ok(all) if !all.is_empty() => Ok(all),
                    Ok(_) => Err(Some("no address".to_string())),
                    Err(e) => Err(Some(e.to_string())),
                }
            };
            let resolved = match resolved {
                Ok(all) => all,
                Err(why) => {
                    if let Some(why) = why {
                        tracing::warn!(backend = %self.name, member = %m.authority, reason = %why, "pool member's host name did not resolve; keeping its last addresses");
                    }
                    next.extend(had.cloned());
                    continue;
                }
            };
            for gone in had.clone().filter(|x| !resolved.contains(&x.address)) {
                tracing::info!(backend = %self.name, member = %m.authority, address = %gone.address, "pool member's address is gone: out of the pool");
                changed = true;
            }
            for at in resolved {
                if let Some(kept) = had.clone().find(|x| x.address == at) {
                    next.push(kept.clone());
                    continue;
                }
                match self.member(m, at) {
                    Ok(new) => {
                        tracing::info!(backend = %self.name, member = %m.authority, address = %at, "pool member's host name has a new address: in the pool");
                        let new = Arc::new(new);
                        added.push(new.clone());
                        next.push(new);
                        changed = true;
                    }
                    Err(e) => {
                        tracing::warn!(backend = %self.name, reason = %e, "pool member's new address left out")
                    }
                }
            }
        }
        if !changed {
            return;
        }
        {
            let mut checkers = self.checkers.lock().unwrap_or_else(|e| e.into_inner());
            checkers.retain(|(authority, at), task| {
                let stays = next
                    .iter()
                    .any(|m| m.authority == *authority && m.address == *at);
                if !stays {
                    task.abort();
                }
                stays
            });
        }
        self.check(&added);
        self.set.store(Arc::new(MemberSet::new(&self.spec, next)));
    }

    async fn attempt(
        &self,
        m: &Member,
        out: &Outgoing,
        body: RequestBody,
        upgrade: bool,
        read_timeout: Duration,
    ) -> Result<Answer, BackendError> {
        m.requests.fetch_add(1, Ordering::Relaxed);
        m.outstanding.fetch_add(1, Ordering::Relaxed);
        let in_flight = InFlight(m);
        let result = send_on(&m.clients, &m.backend, out, body, upgrade, read_timeout).await;
        drop(in_flight);
        let now = self.now();
        let breaker = self.spec.circuit_breaker.as_ref();
        match &result {
            Err(BackendError::Connect(_) | BackendError::Failed(_)) => {
                self.failed(m, now);
                if let Some(rule) = breaker {
                    self.breaker_failure(m, rule, now, None);
                }
            }
            // The client's body, not the member's doing.
            Err(_) => {}
            Ok(answer) => {
                let status = answer.response.status().as_u16();
                if status >= 500 {
                    self.failed(m, now);
                } else {
                    m.succeeded();
                }
                if let Some(rule) =
                    breaker.filter(|r| r.statuses.iter().any(|s| s.contains(status)))
                {
                    let after = breaker::retry_after(answer.response.headers());
                    self.breaker_failure(m, rule, now, after);
                }
            }
        }
        result
    }

    fn failed(&self, m: &Member, now: u64) {
        if m.failed(&self.spec.ejection, now) {
            tracing::warn!(backend = %self.name, member = %m.authority, address = %m.address, for_ms = m.back_in(now), "pool member ejected after consecutive failures");
        }
    }

    fn breaker_failure(
        &self,
        m: &Member,
        rule: &crate::config::pool::CircuitBreaker,
        now: u64,
        after: Option<Duration>,
    ) {
        if m.breaker.failure(rule, now, after) {
            tracing::warn!(backend = %self.name, member = %m.authority, address = %m.address, for_ms = m.breaker.remaining(now), "circuit breaker tripped");
        }
    }

    /// No member available: 503, and when one may be back.
    fn unavailable(&self) -> BackendError {
        let now = self.now();
        let soonest = self
            .set
            .load()
            .members
            .iter()
            .filter(|m| m.healthy.load(Ordering::Relaxed))
            .map(|m| m.back_in(now))
            .filter(|&ms| ms > 0)
            .min()
            .map(Duration::from_millis)
            .unwrap_or_else(|| health::back_in(self.spec.health_check.as_ref()));
        BackendError::Unavailable {
            retry_after_secs: soonest.as_millis().div_ceil(1000).max(1) as u64,
        }
    }

    fn view(&self) -> PoolView {
        let now = self.now();
        PoolView {
            backend: self.name.to_string(),
            balance: format!("{:?}", self.spec.balance),
            members: self
                .set
                .load()
                .members
                .iter()
                .map(|m| {
                    let healthy = m.healthy.load(Ordering::Relaxed);
                    let state = if !healthy {
                        "unhealthy"
                    } else if m.breaker.is_open(now) {
                        "breaker-open"
                    } else if m.is_ejected(now) {
                        "ejected"
                    } else {
                        "available"
                    };
                    MemberView {
                        member: m.authority.clone(),
                        address: Some(m.address.to_string()),
                        priority: m.priority,
                        weight: m.weight,
                        state: state.into(),
                        healthy,
                        ejected: m.is_ejected(now),
                        breaker_open: m.breaker.is_open(now),
                        back_in_ms: m.back_in(now),
                        outstanding: m.outstanding.load(Ordering::Relaxed),
                        requests: m.requests.load(Ordering::Relaxed),
                        failures: m.failures.load(Ordering::Relaxed),
                        recent_failures: m.consecutive_failures.load(Ordering::Relaxed),
                        ejections: m.ejections.load(Ordering::Relaxed),
                        breaker_trips: m.breaker.trips.load(Ordering::Relaxed),
                        retries: m.retries.load(Ordering::Relaxed),
                    }
                })
                .collect(),
        }
    }
}

// The views live with the status file, which must not depend on the proxy.
pub use crate::status::{MemberView, PoolView};

/// The pools in service, by backend name.
pub fn views(registry: &crate::state_registry::StateRegistry) -> Vec<PoolView> {
    let mut views: Vec<PoolView> = registry
        .each::<PoolState>(crate::state_registry::Kind::BackendPool)
        .iter()
        .map(|p| p.view())
        .collect();
    views.sort_by(|a, b| a.backend.cmp(&b.backend));
    views
}

/// Keeps the status file's `pools` current: rewritten once a second when
/// anything in it changed.
pub async fn publish(
    registry: Arc<crate::state_registry::StateRegistry>,
    status: Arc<crate::status::StatusFile>,
) {
    let mut last = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = views(&registry);
        if now != last {
            status.update(|s| s.pools = now.clone());
            last = now;
        }
    }
}

/// Prometheus lines for every pool in service.
pub fn render_metrics(pools: &[PoolView], out: &mut String) {
    if pools.is_empty() {
        return;
    }
    type Field = fn(&MemberView) -> u64;
    let series: [(&str, &str, &str, Field); 9] = [
        (
            "healthy",
            "gauge",
            "1 when the active health checks pass (or none are configured).",
            |m| m.healthy.into(),
        ),
        (
            "ejected",
            "gauge",
            "1 while ejected for failing live traffic.",
            |m| m.ejected.into(),
        ),
        (
            "breaker_open",
            "gauge",
            "1 while its circuit breaker is open.",
            |m| m.breaker_open.into(),
        ),
        (
            "outstanding",
            "gauge",
            "Requests awaiting its response head.",
            |m| m.outstanding.into(),
        ),
        ("requests_total", "counter", "Requests sent to it.", |m| {
            m.requests
        }),
        (
            "failures_total",
            "counter",
            "Connect failures, failed exchanges and 5xx answers.",
            |m| m.failures,
        ),
        ("ejections_total", "counter", "Times it was ejected.", |m| {
            m.ejections
        }),
        (
            "breaker_trips_total",
            "counter",
            "Times its circuit breaker tripped.",
            |m| m.breaker_trips,
        ),
        (
            "retries_total",
            "counter",
            "Requests sent to it again after another member gave no answer.",
            |m| m.retries,
        ),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(
            out,
            "# HELP edgegw_pool_member_{name} {help}\n# TYPE edgegw_pool_member_{name} {kind}"
        );
        for pool in pools {
            for m in &pool.members {
                let _ = writeln!(
                    out,
                    "edgegw_pool_member_{name}{{backend=\"{}\",member=\"{}\",address=\"{}\"}} {}",
                    escape(&pool.backend),
                    escape(&m.member),
                    escape(m.address.as_deref().unwrap_or_default()),
                    value(m)
                );
            }
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}
