//! Fixed-window call counters per key, exact on one gateway (one mutex per
//! policy; the check and the increment are one step).
//!
//! A key's window starts with its first call and lasts the renewal period;
//! up to `limit` calls are admitted in it. Memory is bounded: at most
//! `max_keys` windows are kept; when full, expired windows are dropped
//! first, then the least recently used key is evicted (that client's count
//! restarts, so under key churn above `max_keys` a limit can admit more).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Outcome of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed { remaining: u64, reset: Duration },
    Denied { retry_after: Duration },
}

struct Window {
    start: Instant,
    count: u64,
    last_used: Instant,
}

pub struct Counters {
    limit: u64,
    period: Duration,
    max_keys: usize,
    windows: Mutex<HashMap<String, Window>>,
}

/// Default bound on distinct keys per policy.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

impl Counters {
    pub fn new(limit: u64, period: Duration, max_keys: usize) -> Counters {
        Counters {
            limit,
            period,
            max_keys: max_keys.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn hit(&self, key: &str, now: Instant) -> Decision {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if !windows.contains_key(key) && windows.len() >= self.max_keys {
            self.make_room(&mut windows, now);
        }
        // Look up before inserting: no key allocation on the hot path.
        if !windows.contains_key(key) {
            let fresh = Window {
                start: now,
                count: 0,
                last_used: now,
            };
            windows.insert(key.to_string(), fresh);
        }
        let window = windows.get_mut(key).expect("inserted above");
        if now.duration_since(window.start) >= self.period {
            window.start = now;
            window.count = 0;
        }
        window.last_used = now;
        let reset = self.period - now.duration_since(window.start);
        if window.count >= self.limit {
            return Decision::Denied { retry_after: reset };
        }
        window.count += 1;
        Decision::Allowed {
            remaining: self.limit - window.count,
            reset,
        }
    }

    fn make_room(&self, windows: &mut HashMap<String, Window>, now: Instant) {
        windows.retain(|_, w| now.duration_since(w.start) < self.period);
        if windows.len() >= self.max_keys
            && let Some(oldest) = windows
                .iter()
                .min_by_key(|(_, w)| w.last_used)
                .map(|(k, _)| k.clone())
        {
            windows.remove(&oldest);
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

    #[test]
    fn admits_exactly_the_limit_per_window() {
        let c = Counters::new(3, Duration::from_secs(10), 10);
        let t0 = Instant::now();
        for left in [2, 1, 0] {
            assert!(
                matches!(c.hit("a", t0), Decision::Allowed { remaining, .. } if remaining == left)
            );
        }
        assert_eq!(
            c.hit("a", t0 + Duration::from_secs(4)),
            Decision::Denied {
                retry_after: Duration::from_secs(6)
            }
        );
        // Other keys have their own window.
        assert!(matches!(c.hit("b", t0), Decision::Allowed { .. }));
        // The window renews.
        assert!(matches!(
            c.hit("a", t0 + Duration::from_secs(10)),
            Decision::Allowed { remaining: 2, .. }
        ));
    }

    #[test]
    fn memory_is_bounded() {
        let c = Counters::new(1, Duration::from_secs(60), 100);
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
    fn rounds_up() {
        assert_eq!(ceil_secs(Duration::from_millis(1500)), 2);
        assert_eq!(ceil_secs(Duration::from_secs(3)), 3);
    }
}
