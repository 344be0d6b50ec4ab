//! Backend pools: a `[[backends]]` entry with several members. Per
//! request a member is chosen (`balance`: priority groups, then weighted
//! round robin or least requests) among those available: healthy by the
//! active checks (`health`), not ejected for failing live traffic, and
//! with a closed circuit breaker (`breaker`) — per-member state in
//! `member`. An idempotent request without a body that got no answer from
//! one member (connect failure or a dropped connection) is sent once more
//! to another. With no member available the proxy answers 503 with
//! `Retry-After`.
//!
//! The pool's state (and its health-check task) is kept across reloads by
//! the state registry, under the backend's identity and the pool's
//! settings: an unchanged pool keeps its members' state.

mod balance;
mod breaker;
mod health;
mod member;

use std::{
    fmt::Write,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use super::{
    RequestBody,
    backend::{Answer, Clients, Outgoing, send_on},
    backend_error::BackendError,
    h1_client::Dialer,
};
use crate::config::{Backend, pool::PoolSpec};
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
    #[error("backend \"{backend}\": health check of member \"{member}\": {why}")]
    HealthCheck {
        backend: String,
        member: String,
        why: String,
    },
}

/// A pool in service: its members' state and the health-check task,
/// aborted when the last gateway using the pool lets it go.
pub struct PoolState {
    inner: Arc<Inner>,
    /// One health-check task per member.
    checkers: Vec<tokio::task::AbortHandle>,
}

pub struct Inner {
    /// The `[[backends]]` name.
    pub name: String,
    spec: Arc<PoolSpec>,
    pub members: Vec<Member>,
    balancer: Balancer,
    /// The pool's clock: milliseconds since this instant.
    epoch: Instant,
}

impl Drop for PoolState {
    fn drop(&mut self) {
        for task in &self.checkers {
            task.abort();
        }
    }
}

/// Every member must resolve when the configuration loads: a typo is
/// refused then, not found by the first request.
pub fn check_resolvable(name: &str, spec: &PoolSpec, scheme: &str) -> Result<(), PoolError> {
    use std::net::ToSocketAddrs;
    let port = if scheme == "https" { 443 } else { 80 };
    for m in &spec.members {
        let address = if m.authority.rsplit_once(':').is_some_and(|(h, p)| {
            !h.ends_with(':') && p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty()
        }) {
            m.authority.clone()
        } else {
            format!("{}:{port}", m.authority)
        };
        match address.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(PoolError::Unresolvable {
                    backend: name.into(),
                    member: m.authority.clone(),
                    why: "no address".into(),
                });
            }
            Err(e) => {
                return Err(PoolError::Unresolvable {
                    backend: name.into(),
                    member: m.authority.clone(),
                    why: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

impl PoolState {
    /// The identity its state is kept under across reloads.
    pub fn identity(connections: &str, spec: &PoolSpec) -> String {
        format!("{connections} {spec:?}")
    }

    /// `members`: each member as a plain backend and its clients. Starts
    /// the health-check task on the current runtime, if any.
    pub(crate) fn new(
        spec: &Arc<PoolSpec>,
        members: Vec<(Backend, Arc<Clients>)>,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<PoolState, PoolError> {
        let inner = Arc::new(Inner {
            name: spec.name.clone(),
            spec: spec.clone(),
            members: spec
                .members
                .iter()
                .zip(members)
                .map(|(m, (backend, clients))| Member::new(m, backend, clients))
                .collect(),
            balancer: Balancer::new(spec.balance, spec.members.len()),
            epoch: Instant::now(),
        });
        let mut checkers = Vec::new();
        if let (Some(check), Ok(runtime)) =
            (&spec.health_check, tokio::runtime::Handle::try_current())
        {
            let dialers = spec
                .members
                .iter()
                .map(|m| {
                    Dialer::new(&m.authority, tls.clone(), check.timeout).map_err(|why| {
                        PoolError::HealthCheck {
                            backend: spec.name.clone(),
                            member: m.authority.clone(),
                            why,
                        }
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            for (i, dialer) in dialers.into_iter().enumerate() {
                let task = runtime.spawn(health::run(inner.clone(), i, check.clone(), dialer));
                checkers.push(task.abort_handle());
            }
        }
        Ok(PoolState { inner, checkers })
    }

    /// Sends the request to a member; see the module's comment.
    pub async fn send(
        &self,
        out: &Outgoing,
        body: RequestBody,
        upgrade: bool,
        read_timeout: Duration,
    ) -> Result<Answer, BackendError> {
        use hyper::body::Body;
        let pool = &*self.inner;
        let Some(first) = pool.balancer.pick(&pool.members, pool.now(), None) else {
            return Err(pool.unavailable());
        };
        let replayable = !upgrade && body.is_end_stream() && out.method.is_idempotent();
        let result = pool.attempt(first, out, body, upgrade, read_timeout).await;
        match result {
            Err(e @ (BackendError::Connect(_) | BackendError::Failed(_))) if replayable => {
                let Some(next) = pool.balancer.pick(&pool.members, pool.now(), Some(first)) else {
                    return Err(e);
                };
                pool.members[next].retries.fetch_add(1, Ordering::Relaxed);
                use http_body_util::BodyExt;
                let empty = http_body_util::Empty::<bytes::Bytes>::new()
                    .map_err(|never| match never {})
                    .boxed_unsync();
                pool.attempt(next, out, empty, false, read_timeout).await
            }
            result => result,
        }
    }

    pub fn view(&self) -> PoolView {
        self.inner.view()
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
        self.epoch.elapsed().as_millis() as u64
    }

    async fn attempt(
        &self,
        i: usize,
        out: &Outgoing,
        body: RequestBody,
        upgrade: bool,
        read_timeout: Duration,
    ) -> Result<Answer, BackendError> {
        let m = &self.members[i];
        m.requests.fetch_add(1, Ordering::Relaxed);
        m.outstanding.fetch_add(1, Ordering::Relaxed);
        let in_flight = InFlight(m);
        let result = Box::pin(send_on(
            &m.clients,
            &m.backend,
            out,
            body,
            upgrade,
            read_timeout,
        ))
        .await;
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
            tracing::warn!(backend = %self.name, member = %m.authority, for_ms = m.back_in(now), "pool member ejected after consecutive failures");
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
            tracing::warn!(backend = %self.name, member = %m.authority, for_ms = m.breaker.remaining(now), "circuit breaker tripped");
        }
    }

    /// No member available: 503, and when one may be back.
    fn unavailable(&self) -> BackendError {
        let now = self.now();
        let soonest = self
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
            backend: self.name.clone(),
            balance: format!("{:?}", self.spec.balance),
            members: self
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
                    "edgegw_pool_member_{name}{{backend=\"{}\",member=\"{}\"}} {}",
                    escape(&pool.backend),
                    escape(&m.member),
                    value(m)
                );
            }
        }
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}
