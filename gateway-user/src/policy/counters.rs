//! Fixed-window call and bandwidth counters per key, exact on one gateway
//! (one mutex per policy; the check and the increment are one step).
//!
//! A key's window starts with its first call and lasts the renewal period;
//! up to `calls` calls are admitted in it, and calls are admitted while
//! fewer than `bytes` body bytes were charged to it. Bytes are known only
//! when a call ends, so they are charged afterwards (`charge`): the call
//! that crosses the bandwidth limit completes, the next ones are refused.
//!
//! Memory is bounded: at most `max_keys` windows are kept, in least
//! recently used order; when full, expired windows at the old end are
//! dropped, else the least recently used key is evicted (that client's
//! count restarts, so under key churn above `max_keys` a limit can admit
//! more). Both are O(1) (amortised for expired windows): an address spray
//! costs no scan under the lock.

use std::{
    hash::RandomState,
    sync::Mutex,
    time::{Duration, Instant},
};

use hashlink::LruCache;

/// Outcome of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed {
        /// Calls left in the window (with a calls limit).
        remaining: Option<u64>,
        /// Bytes left in the window (with a bandwidth limit).
        remaining_bytes: Option<u64>,
        /// When the window ends.
        reset: Duration,
        /// The window the call was counted in, for `charge`.
        window: Instant,
    },
    Denied {
        retry_after: Duration,
        exhausted: Exhausted,
    },
}

/// Which limit refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    Calls,
    Bandwidth,
}

struct Window {
    start: Instant,
    count: u64,
    bytes: u64,
}

/// What a window admits; at least one is set (checked by the policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    pub calls: Option<u64>,
    pub bytes: Option<u64>,
}

pub struct Counters {
    limit: Allowance,
    period: Duration,
    max_keys: usize,
    /// SipHash: the keys come from callers.
    windows: Mutex<LruCache<String, Window, RandomState>>,
}

/// Default bound on distinct keys per policy.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

impl Counters {
    pub fn new(limit: Allowance, period: Duration, max_keys: usize) -> Counters {
        Counters {
            limit,
            period,
            max_keys: max_keys.max(1),
            // Unbounded: `make_room` evicts, expired windows first.
            windows: Mutex::new(LruCache::with_hasher(usize::MAX, RandomState::new())),
        }
    }

    pub fn hit(&self, key: &str, now: Instant) -> Decision {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        // A known key costs one lookup and no allocation (and becomes the
        // most recently used).
        if let Some(window) = windows.get_mut(key) {
            return self.count(window, now);
        }
        if windows.len() >= self.max_keys {
            self.make_room(&mut windows, now);
        }
        let fresh = Window {
            start: now,
            count: 0,
            bytes: 0,
        };
        let window = windows.entry(key.to_string()).or_insert(fresh);
        self.count(window, now)
    }

    /// Whether a call of `key` would be admitted, without counting it
    /// (a limit with an increment condition counts it later, `add`).
    pub fn peek(&self, key: &str, now: Instant) -> Decision {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        match windows.get_mut(key) {
            Some(window) => self.decide(window, now, false),
            None => self.decide(
                &mut Window {
                    start: now,
                    count: 0,
                    bytes: 0,
                },
                now,
                false,
            ),
        }
    }

    /// Counts one call of `key` that was admitted earlier (`peek`); the
    /// window may have renewed meanwhile.
    pub fn add(&self, key: &str, now: Instant) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if !windows.contains_key(key) && windows.len() >= self.max_keys {
            self.make_room(&mut windows, now);
        }
        let window = windows.entry(key.to_string()).or_insert(Window {
            start: now,
            count: 0,
            bytes: 0,
        });
        if now.duration_since(window.start) >= self.period {
            *window = Window {
                start: now,
                count: 0,
                bytes: 0,
            };
        }
        window.count = window.count.saturating_add(1);
    }

    /// One call in `window`: the check and the increment.
    fn count(&self, window: &mut Window, now: Instant) -> Decision {
        self.decide(window, now, true)
    }

    /// The check, and the increment when `counting`; remaining calls are
    /// reported as if this call counted.
    fn decide(&self, window: &mut Window, now: Instant, counting: bool) -> Decision {
        let mut elapsed = now.duration_since(window.start);
        if elapsed >= self.period {
            window.start = now;
            window.count = 0;
            window.bytes = 0;
            elapsed = Duration::ZERO;
        }
        let reset = self.period - elapsed;
        let denied = |exhausted| Decision::Denied {
            retry_after: reset,
            exhausted,
        };
        if self.limit.calls.is_some_and(|c| window.count >= c) {
            return denied(Exhausted::Calls);
        }
        if self.limit.bytes.is_some_and(|b| window.bytes >= b) {
            return denied(Exhausted::Bandwidth);
        }
        let used = window.count + 1;
        if counting {
            window.count = used;
        }
        Decision::Allowed {
            remaining: self.limit.calls.map(|c| c.saturating_sub(used)),
            remaining_bytes: self.limit.bytes.map(|b| b - window.bytes),
            reset,
            window: window.start,
        }
    }

    /// Adds the body bytes of a call admitted in `window` (the `Allowed`
    /// decision's); nothing if that window has since ended or been evicted.
    pub fn charge(&self, key: &str, window: Instant, bytes: u64) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = windows.peek_mut(key)
            && w.start == window
        {
            w.bytes = w.bytes.saturating_add(bytes);
        }
    }

    /// Drops the expired windows at the least recently used end (each one
    /// once), then the least recently used key if still full.
    fn make_room(&self, windows: &mut LruCache<String, Window, RandomState>, now: Instant) {
        while windows
            .iter()
            .next()
            .is_some_and(|(_, w)| now.duration_since(w.start) >= self.period)
        {
            windows.remove_lru();
        }
        if windows.len() >= self.max_keys {
            windows.remove_lru();
        }
    }

    pub fn keys(&self) -> usize {
        self.windows.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Whole seconds, rounded up, for `Retry-After` and `RateLimit`.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(n: u64) -> Allowance {
        Allowance {
            calls: Some(n),
            bytes: None,
        }
    }

    #[test]
    fn peek_admits_without_counting_and_add_counts_later() {
        let c = Counters::new(calls(2), Duration::from_secs(10), 10);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(matches!(
                c.peek("a", t0),
                Decision::Allowed {
                    remaining: Some(1),
                    ..
                }
            ));
        }
        c.add("a", t0);
        assert!(matches!(
            c.peek("a", t0),
            Decision::Allowed {
                remaining: Some(0),
                ..
            }
        ));
        c.add("a", t0);
        assert!(matches!(c.peek("a", t0), Decision::Denied { .. }));
        // A call admitted in an ended window counts in the new one.
        let later = t0 + Duration::from_secs(11);
        assert!(matches!(
            c.peek("a", later),
            Decision::Allowed {
                remaining: Some(1),
                ..
            }
        ));
        c.add("a", later);
        assert!(matches!(
            c.peek("a", later),
            Decision::Allowed {
                remaining: Some(0),
                ..
            }
        ));
        assert_eq!(c.keys(), 1);
    }

    #[test]
    fn admits_exactly_the_limit_per_window() {
        let c = Counters::new(calls(3), Duration::from_secs(10), 10);
        let t0 = Instant::now();
        for left in [2, 1, 0] {
            assert!(
                matches!(c.hit("a", t0), Decision::Allowed { remaining, .. } if remaining == Some(left))
            );
        }
        assert_eq!(
            c.hit("a", t0 + Duration::from_secs(4)),
            Decision::Denied {
                retry_after: Duration::from_secs(6),
                exhausted: Exhausted::Calls,
            }
        );
        // Other keys have their own window.
        assert!(matches!(c.hit("b", t0), Decision::Allowed { .. }));
        // The window renews.
        assert!(matches!(
            c.hit("a", t0 + Duration::from_secs(10)),
            Decision::Allowed {
                remaining: Some(2),
                ..
            }
        ));
    }

    #[test]
    fn bandwidth_refuses_once_the_bytes_are_used_up() {
        let limit = Allowance {
            calls: None,
            bytes: Some(1000),
        };
        let c = Counters::new(limit, Duration::from_secs(10), 10);
        let t0 = Instant::now();
        let Decision::Allowed {
            remaining: None,
            remaining_bytes: Some(1000),
            window,
            ..
        } = c.hit("a", t0)
        else {
            panic!("first call refused");
        };
        c.charge("a", window, 600);
        // 400 bytes left: the next call is admitted and may cross the limit.
        assert!(matches!(
            c.hit("a", t0),
            Decision::Allowed {
                remaining_bytes: Some(400),
                ..
            }
        ));
        c.charge("a", window, 500);
        assert_eq!(
            c.hit("a", t0 + Duration::from_secs(1)),
            Decision::Denied {
                retry_after: Duration::from_secs(9),
                exhausted: Exhausted::Bandwidth,
            }
        );
        // A new window starts empty; a late charge for the old one is dropped.
        let later = t0 + Duration::from_secs(10);
        assert!(matches!(
            c.hit("a", later),
            Decision::Allowed {
                remaining_bytes: Some(1000),
                ..
            }
        ));
        c.charge("a", window, 5000);
        assert!(matches!(c.hit("a", later), Decision::Allowed { .. }));
    }

    #[test]
    fn calls_and_bandwidth_together_refuse_on_the_first_used_up() {
        let limit = Allowance {
            calls: Some(2),
            bytes: Some(100),
        };
        let c = Counters::new(limit, Duration::from_secs(10), 10);
        let t0 = Instant::now();
        assert!(matches!(c.hit("a", t0), Decision::Allowed { .. }));
        assert!(matches!(c.hit("a", t0), Decision::Allowed { .. }));
        assert!(matches!(
            c.hit("a", t0),
            Decision::Denied {
                exhausted: Exhausted::Calls,
                ..
            }
        ));
        let Decision::Allowed { window, .. } = c.hit("b", t0) else {
            panic!("b refused");
        };
        c.charge("b", window, 100);
        assert!(matches!(
            c.hit("b", t0),
            Decision::Denied {
                exhausted: Exhausted::Bandwidth,
                ..
            }
        ));
    }

    #[test]
    fn memory_is_bounded() {
        let c = Counters::new(calls(1), Duration::from_secs(60), 100);
        let t0 = Instant::now();
        for i in 0..1000 {
            c.hit(&format!("k{i}"), t0 + Duration::from_millis(i));
        }
        assert_eq!(c.keys(), 100);
        // The most recent key is still counted.
        assert!(matches!(
            c.hit("k999", t0 + Duration::from_secs(1)),
            Decision::Denied { .. }
        ));
        // Expired windows are dropped before anything is evicted.
        c.hit("new", t0 + Duration::from_secs(120));
        assert_eq!(c.keys(), 1);
    }

    #[test]
    fn a_full_map_evicts_the_least_recently_used_key() {
        let c = Counters::new(calls(1), Duration::from_secs(60), 3);
        let t0 = Instant::now();
        for k in ["a", "b", "c"] {
            c.hit(k, t0);
        }
        // "a" is used again, so "b" is now the least recently used.
        assert!(matches!(c.hit("a", t0), Decision::Denied { .. }));
        c.hit("d", t0);
        assert_eq!(c.keys(), 3);
        for (key, counted) in [("a", true), ("c", true), ("d", true), ("b", false)] {
            let denied = matches!(c.hit(key, t0), Decision::Denied { .. });
            assert_eq!(denied, counted, "{key}");
        }
    }

    #[test]
    fn expired_windows_go_before_a_live_one_is_evicted() {
        let c = Counters::new(calls(1), Duration::from_secs(10), 3);
        let t0 = Instant::now();
        c.hit("old1", t0);
        c.hit("old2", t0);
        c.hit("live", t0 + Duration::from_secs(8));
        c.hit("new", t0 + Duration::from_secs(12));
        assert_eq!(c.keys(), 2, "both expired windows dropped");
        assert!(matches!(
            c.hit("live", t0 + Duration::from_secs(12)),
            Decision::Denied { .. }
        ));
    }

    #[test]
    fn rounds_up() {
        assert_eq!(ceil_secs(Duration::from_millis(1500)), 2);
        assert_eq!(ceil_secs(Duration::from_secs(3)), 3);
    }
}
