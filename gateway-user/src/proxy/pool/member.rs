//! One member's state: health (active checks), passive ejection, its
//! circuit breaker, requests awaiting their answer, and counts for status
//! and metrics. Shared by every worker thread; atomics on the request path.
//! A member is one address: a configured member whose host name resolves
//! to several is several of these (see `addresses`).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
};

use super::breaker::Breaker;
use crate::{
    config::{Backend, pool::Ejection},
    proxy::backend::Clients,
};

pub struct Member {
    /// host:port as configured (the `Host` header and TLS server name).
    pub authority: String,
    /// The one address its connections go to.
    pub address: SocketAddr,
    pub weight: u32,
    pub priority: u32,
    /// The member as a plain backend (its address, the pool's settings).
    pub backend: Backend,
    pub(crate) clients: Arc<Clients>,
    /// The active checks' verdict; true until they say otherwise.
    pub healthy: AtomicBool,
    /// Consecutive passed (positive) or failed (negative) checks.
    pub check_streak: std::sync::atomic::AtomicI32,
    /// Consecutive failures on live traffic.
    pub consecutive_failures: AtomicU32,
    /// Until when it is ejected (pool clock ms; 0: not ejected).
    ejected_until: AtomicU64,
    /// Ejections in a row, doubling each one's length; reset by a success
    /// or by the active checks bringing it back.
    ejections_in_a_row: AtomicU32,
    pub breaker: Breaker,
    pub outstanding: AtomicU32,
    pub requests: AtomicU64,
    pub failures: AtomicU64,
    pub ejections: AtomicU64,
    pub retries: AtomicU64,
}

impl Member {
    pub(crate) fn new(
        m: &crate::config::pool::Member,
        address: SocketAddr,
        backend: Backend,
        clients: Arc<Clients>,
    ) -> Member {
        Member {
            authority: m.authority.clone(),
            address,
            weight: m.weight,
            priority: m.priority,
            backend,
            clients,
            healthy: AtomicBool::new(true),
            check_streak: Default::default(),
            consecutive_failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejections_in_a_row: AtomicU32::new(0),
            breaker: Breaker::default(),
            outstanding: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            ejections: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    /// Whether it may take a request now.
    pub fn available(&self, now: u64) -> bool {
        self.healthy.load(Ordering::Relaxed) && !self.is_ejected(now) && !self.breaker.is_open(now)
    }

    pub fn is_ejected(&self, now: u64) -> bool {
        self.ejected_until.load(Ordering::Relaxed) > now
    }

    /// Milliseconds until it may take requests again as far as ejection
    /// and breaker go (0: now).
    pub fn back_in(&self, now: u64) -> u64 {
        self.ejected_until
            .load(Ordering::Relaxed)
            .saturating_sub(now)
            .max(self.breaker.remaining(now))
    }

    /// A request got an answer that is no failure.
    pub fn succeeded(&self) {
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if self.ejections_in_a_row.load(Ordering::Relaxed) != 0 {
            self.ejections_in_a_row.store(0, Ordering::Relaxed);
        }
    }

    /// A connect failure, a failed exchange or a 5xx: counts towards
    /// ejection; true when it ejected the member.
    pub fn failed(&self, rule: &Ejection, now: u64) -> bool {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let n = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if rule.consecutive_failures == 0 || n < rule.consecutive_failures || self.is_ejected(now) {
            return false;
        }
        self.consecutive_failures.store(0, Ordering::Relaxed);
        let k = self
            .ejections_in_a_row
            .fetch_add(1, Ordering::Relaxed)
            .min(20);
        let length = rule.base.saturating_mul(1 << k).min(rule.max);
        self.ejected_until
            .store(now + length.as_millis() as u64, Ordering::Relaxed);
        self.ejections.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The active checks found it healthy again: it takes requests now,
    /// whatever ejection was running.
    pub fn restored(&self) {
        self.ejected_until.store(0, Ordering::Relaxed);
        self.ejections_in_a_row.store(0, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.healthy.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;

    pub(crate) fn member() -> Member {
        let spec = crate::config::pool::Member {
            authority: "127.0.0.1:9".into(),
            weight: 1,
            priority: 1,
        };
        let backend = crate::config::Config::parse(
            "t.toml",
            "[gateway]\nlisten = \"127.0.0.1:1\"\n[[apis]]\nname = \"a\"\npath = \"/\"\nbackend = \"http://127.0.0.1:9\"\n",
        )
        .unwrap()
        .apis[0]
            .backend
            .clone();
        let clients = Arc::new(Clients::new(&backend, None).unwrap());
        Member::new(&spec, "127.0.0.1:9".parse().unwrap(), backend, clients)
    }

    #[test]
    fn ejection_grows_and_a_success_or_recovery_resets_it() {
        let m = member();
        let rule = Ejection {
            consecutive_failures: 2,
            base: Duration::from_millis(100),
            max: Duration::from_millis(300),
        };
        assert!(!m.failed(&rule, 0));
        assert!(m.failed(&rule, 0));
        assert!(m.is_ejected(99) && !m.is_ejected(100));
        m.failed(&rule, 100);
        assert!(m.failed(&rule, 100), "second ejection");
        assert!(m.is_ejected(299) && !m.is_ejected(300), "twice as long");
        m.failed(&rule, 300);
        m.failed(&rule, 300);
        assert_eq!(m.back_in(300), 300, "capped at max");
        m.restored();
        assert!(m.available(300));
        m.failed(&rule, 400);
        assert!(m.failed(&rule, 400));
        assert_eq!(m.back_in(400), 100, "back to base after recovery");
        assert_eq!(m.ejections.load(Ordering::Relaxed), 4);
    }
}
