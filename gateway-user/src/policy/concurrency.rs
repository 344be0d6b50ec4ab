//! `limit-concurrency`: at most `max_count` requests of this scope at once
//! (from inbound until the backend's response headers); more get 429.
//! Reloads carry the in-flight count over (`state_registry`).

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use gateway_model::policy::concurrency::LimitConcurrencySpec;
use hyper::{StatusCode, header::HeaderValue};

use super::respond::{self, Answer};
use crate::state_registry::{Kind as StateKind, Staging};

#[derive(Debug)]
pub struct LimitConcurrency {
    max: usize,
    active: Arc<AtomicUsize>,
}

/// One admitted request; releases its slot when dropped.
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl LimitConcurrency {
    /// Its in-flight count is the one kept under `place`, if any.
    pub fn new(spec: &LimitConcurrencySpec, place: &str, staging: &mut Staging) -> Self {
        LimitConcurrency {
            max: spec.max,
            // Always carried over: the requests it counts are still running,
            // whatever the new `max_count` is.
            active: staging.take(
                StateKind::Concurrency,
                place.to_string(),
                AtomicUsize::default,
            ),
        }
    }

    /// A slot, or `None` when `max_count` requests are in flight.
    pub fn acquire(&self) -> Option<Slot> {
        self.active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.active.clone()))
    }

    /// The answer when no slot is free.
    pub fn refusal() -> Answer {
        let mut r = respond::refusal(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many concurrent requests. Try again shortly.",
        );
        r.headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_released() {
        let l = LimitConcurrency::new(
            &LimitConcurrencySpec { max: 2 },
            "test",
            &mut Staging::fresh(),
        );
        let a = l.acquire().unwrap();
        let _b = l.acquire().unwrap();
        assert!(l.acquire().is_none());
        drop(a);
        assert!(l.acquire().is_some());
        assert_eq!(LimitConcurrency::refusal().status(), 429);
    }
}
