//! The circuit breaker of one member, with the managed product's rule:
//! `failure_count` failures within `interval` open it for `trip_duration`
//! (or for the backend's `Retry-After` on the tripping answer, when
//! `accept_retry_after`); while open the member takes no requests, and it
//! closes by itself when the time is up.

use std::{
    collections::VecDeque,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::config::pool::CircuitBreaker;

/// Times are milliseconds since the pool's epoch (see `Clock`).
#[derive(Default)]
pub struct Breaker {
    /// When the breaker closes again; 0 or past: closed. Read per request
    /// without the lock.
    open_until: AtomicU64,
    /// Failures within the interval, oldest first.
    failures: Mutex<VecDeque<u64>>,
    pub trips: AtomicU64,
}

impl Breaker {
    pub fn is_open(&self, now: u64) -> bool {
        self.open_until.load(Ordering::Relaxed) > now
    }

    /// Milliseconds until it closes (0 when closed).
    pub fn remaining(&self, now: u64) -> u64 {
        self.open_until.load(Ordering::Relaxed).saturating_sub(now)
    }

    /// Counts a failure; true when it tripped the breaker.
    pub fn failure(&self, rule: &CircuitBreaker, now: u64, retry_after: Option<Duration>) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let window = rule.interval.as_millis() as u64;
        while failures.front().is_some_and(|&t| t + window <= now) {
            failures.pop_front();
        }
        failures.push_back(now);
        if failures.len() < rule.failure_count as usize {
            return false;
        }
        failures.clear();
        let trip = match retry_after {
            Some(after) if rule.accept_retry_after => after,
            _ => rule.trip_duration,
        };
        self.open_until
            .store(now + trip.as_millis() as u64, Ordering::Relaxed);
        self.trips.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not honoured).
pub fn retry_after(headers: &hyper::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(hyper::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(86_400)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::pool::StatusRange;

    fn rule(accept_retry_after: bool) -> CircuitBreaker {
        CircuitBreaker {
            failure_count: 3,
            interval: Duration::from_secs(10),
            statuses: vec![StatusRange { min: 500, max: 599 }],
            trip_duration: Duration::from_secs(5),
            accept_retry_after,
        }
    }

    #[test]
    fn trips_on_count_within_interval_and_closes_after_trip_duration() {
        let (b, r) = (Breaker::default(), rule(false));
        assert!(!b.failure(&r, 0, None));
        assert!(!b.failure(&r, 9_000, None));
        // The first failure left the window: two within it.
        assert!(!b.failure(&r, 10_000, None));
        assert!(b.failure(&r, 10_500, Some(Duration::from_secs(60))));
        assert!(b.is_open(10_500) && b.is_open(15_499));
        assert_eq!(b.remaining(14_500), 1_000);
        assert!(!b.is_open(15_500), "closed after the trip duration");
        assert_eq!(b.trips.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn retry_after_replaces_the_trip_duration_when_accepted() {
        let (b, r) = (Breaker::default(), rule(true));
        for t in 0..2 {
            b.failure(&r, t, None);
        }
        assert!(b.failure(&r, 2, Some(Duration::from_secs(60))));
        assert!(b.is_open(59_000));
        let mut h = hyper::HeaderMap::new();
        h.insert(hyper::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
    }
}
