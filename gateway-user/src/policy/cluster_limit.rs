//! Cluster-wide counting for `rate-limit` and `rate-limit-by-key` with
//! `scope: cluster`: every gateway sharing the node's `[redis]` counts
//! against one budget per window.
//!
//! Windows are the wall clock's, `now - now % period`, so every gateway
//! (with synchronised clocks) counts in the same window; the Redis key is
//! `edgegw:rl:<place>:<settings hash>|<key>:<window start ms>` (the same on
//! every gateway running the same policy), expiring two periods after its
//! first lease.
//!
//! Redis stays off most requests: a gateway leases a *share* of the
//! window's budget with one atomic Lua script (grant = min(share, limit -
//! used); INCRBY; PEXPIRE on the first grant), serves calls from that
//! share locally, and leases again only when it is used up. Redis never
//! grants past the limit, so while it is up the cluster never admits more
//! than the limit (no overshoot). The cost is under-admission: calls leased
//! by a gateway that then gets no more traffic in that window are lost, at
//! most `gateways × share` per window. The share is `max(1, limit / 300)`,
//! a third of a percent of the limit per gateway: three gateways stay
//! within 1% (1,000 calls per minute: share 3, at most 9 calls lost).
//! Once Redis answered that the budget is spent, further calls of that
//! window are refused locally, without asking Redis again.
//!
//! At most one lease per limit is in flight on a gateway (later callers
//! wait for it, bounded by the command timeout, then use its share), so a
//! burst never queues commands on Redis. When Redis is down or slow
//! (`redis_link`), `hit` answers `None` and the caller counts locally.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use hashlink::LruCache;

use super::counters::{Decision, Exhausted};
use crate::redis_link::RedisLink;

/// Calls per share, for a limit of `calls`.
pub fn share(calls: u64) -> u64 {
    (calls / 300).max(1)
}

/// 16 hex digits of the SHA-256 of a limit's settings: a changed limit
/// counts afresh.
fn settings_hash(identity: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(identity.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// This gateway's share of one key's window.
#[derive(Clone, Copy)]
struct Lease {
    /// Window start, Unix milliseconds.
    window: u64,
    /// Calls of the share not yet used.
    left: u64,
    /// Calls left cluster-wide when the share was leased.
    remaining: u64,
    /// Redis said the window's budget is spent.
    spent: bool,
}

pub struct ClusterLimit {
    redis: Arc<RedisLink>,
    /// `edgegw:rl:<place>:<settings hash>|`.
    prefix: String,
    calls: u64,
    period_ms: u64,
    share: u64,
    leases: Mutex<LruCache<String, Lease>>,
    /// One lease in flight per limit.
    leasing: tokio::sync::Mutex<()>,
}

impl ClusterLimit {
    pub fn new(
        redis: Arc<RedisLink>,
        place: &str,
        identity: &str,
        calls: u64,
        period: Duration,
        max_keys: usize,
    ) -> ClusterLimit {
        ClusterLimit {
            redis,
            prefix: format!("edgegw:rl:{place}:{}|", settings_hash(identity)),
            calls,
            period_ms: period.as_millis().max(1) as u64,
            share: share(calls),
            leases: Mutex::new(LruCache::new(max_keys.max(1))),
            leasing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn redis(&self) -> &RedisLink {
        &self.redis
    }

    /// One call of `key`, counted cluster-wide; `None` when Redis cannot
    /// count it now (the caller counts it locally).
    pub async fn hit(&self, key: &str) -> Option<Decision> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let window = now - now % self.period_ms;
        let reset = Duration::from_millis(window + self.period_ms - now);
        if let Some(d) = self.serve_from_share(key, window, reset) {
            return Some(d);
        }
        if !self.redis.up() {
            return None;
        }
        let wait = self.redis.command_timeout();
        let _leasing = tokio::time::timeout(wait, self.leasing.lock()).await.ok()?;
        // The lease this call waited for may have brought a share.
        if let Some(d) = self.serve_from_share(key, window, reset) {
            return Some(d);
        }
        let counter = format!("{}{key}:{window}", self.prefix);
        let ttl = Duration::from_millis(self.period_ms * 2);
        let (granted, used) = self
            .redis
            .lease(&counter, self.share, self.calls, ttl)
            .await?;
        let lease = Lease {
            window,
            left: granted,
            remaining: self.calls.saturating_sub(used),
            // Less than asked: the budget is spent now.
            spent: granted < self.share,
        };
        self.leases().insert(key.to_string(), lease);
        self.serve_from_share(key, window, reset)
    }

    /// A call served from this gateway's share, or refused because Redis
    /// said the window is spent; `None` when a lease is needed.
    fn serve_from_share(&self, key: &str, window: u64, reset: Duration) -> Option<Decision> {
        let mut leases = self.leases();
        let lease = leases.get_mut(key).filter(|l| l.window == window)?;
        if lease.left > 0 {
            lease.left -= 1;
            return Some(Decision::Allowed {
                remaining: Some(lease.remaining + lease.left),
                remaining_bytes: None,
                reset,
                window: Instant::now(),
            });
        }
        lease.spent.then_some(Decision::Denied {
            retry_after: reset,
            exhausted: Exhausted::Calls,
        })
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, LruCache<String, Lease>> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn three_gateways_lose_at_most_one_percent() {
        for (calls, want) in [(1, 1), (299, 1), (1000, 3), (60_000, 200)] {
            assert_eq!(share(calls), want, "{calls}");
            // Worst-case under-admission: 3 gateways × share.
            assert!(calls < 300 || 3 * share(calls) * 100 <= calls, "{calls}");
        }
    }
}
