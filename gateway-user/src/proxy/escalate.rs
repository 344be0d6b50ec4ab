//! Escalation of L7 abuse to the kernel: counts each client IP's 401/403/429
//! (configurable) answers in a fixed window and, past the threshold, bans
//! the IP in the pinned XDP ban map, where its packets then drop before
//! they reach the proxy.

use std::{
    hash::RandomState,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use hashlink::LruCache;

use crate::{
    config::Escalation,
    datapath::{self, Cidr, PinDir},
};

/// Client IPs tracked at once. When full, expired windows at the least
/// recently used end are dropped, else the least recently used IP: O(1)
/// per new IP, so an address spray costs no scan, and a client that keeps
/// being refused stays at the recent end and is still counted.
const MAX_TRACKED: usize = 65_536;

pub struct Escalator {
    settings: Escalation,
    pins: PinDir,
    windows: Mutex<Tracker>,
}

impl Escalator {
    pub fn new(settings: Escalation, pins: PinDir) -> Escalator {
        Escalator {
            windows: Mutex::new(Tracker::new(settings.window, MAX_TRACKED)),
            settings,
            pins,
        }
    }

    /// Counts one answer; bans `ip` when it goes over the threshold.
    pub fn observe(&self, ip: IpAddr, status: u16) {
        if !self.settings.statuses.contains(&status) {
            return;
        }
        let count = self
            .windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .count(ip, Instant::now());
        if count > self.settings.threshold {
            self.windows
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .forget(ip);
            self.ban(ip);
        }
    }

    fn ban(&self, ip: IpAddr) {
        let cidr = match ip {
            IpAddr::V4(a) => Cidr::V4(a.octets(), 32),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Cidr::V4(v4.octets(), 32),
                None => Cidr::V6(a.octets(), 128),
            },
        };
        let ban: Duration = self.settings.ban;
        match datapath::ban(&self.pins, cidr, ban) {
            Ok(()) => tracing::warn!(
                client = %ip,
                ban_secs = ban.as_secs(),
                threshold = self.settings.threshold,
                window_secs = self.settings.window.as_secs(),
                "client banned in XDP after repeated {:?} answers; `edgegw unban {cidr}` lifts it",
                self.settings.statuses
            ),
            Err(e) => tracing::error!(client = %ip, error = %e, "escalation ban failed"),
        }
    }
}

/// Fixed-window answer counts per IP, at most `max` IPs.
struct Tracker {
    window: Duration,
    max: usize,
    /// (window start, answers in it); SipHash: the keys come from callers.
    ips: LruCache<IpAddr, (Instant, u32), RandomState>,
}

impl Tracker {
    fn new(window: Duration, max: usize) -> Tracker {
        Tracker {
            window,
            max: max.max(1),
            ips: LruCache::with_hasher(usize::MAX, RandomState::new()),
        }
    }

    /// Counts one answer to `ip`; its count in the current window.
    fn count(&mut self, ip: IpAddr, now: Instant) -> u32 {
        // Known: one lookup, and it becomes the most recently used.
        if let Some((start, count)) = self.ips.get_mut(&ip) {
            if now.duration_since(*start) >= self.window {
                (*start, *count) = (now, 0);
            }
            *count += 1;
            return *count;
        }
        while self
            .ips
            .iter()
            .next()
            .is_some_and(|(_, (start, _))| now.duration_since(*start) >= self.window)
        {
            self.ips.remove_lru();
        }
        if self.ips.len() >= self.max {
            self.ips.remove_lru();
        }
        self.ips.insert(ip, (now, 1));
        1
    }

    fn forget(&mut self, ip: IpAddr) {
        self.ips.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(n.into())
    }

    #[test]
    fn counts_per_ip_in_a_fixed_window() {
        let mut t = Tracker::new(Duration::from_secs(10), 100);
        let t0 = Instant::now();
        assert_eq!(t.count(ip(1), t0), 1);
        assert_eq!(t.count(ip(1), t0 + Duration::from_secs(9)), 2);
        assert_eq!(t.count(ip(2), t0), 1);
        assert_eq!(t.count(ip(1), t0 + Duration::from_secs(10)), 1);
        t.forget(ip(2));
        assert_eq!(t.count(ip(2), t0), 1);
    }

    #[test]
    fn a_spray_evicts_the_least_recently_counted_not_the_active_abuser() {
        let mut t = Tracker::new(Duration::from_secs(60), 100);
        let t0 = Instant::now();
        let abuser = ip(u32::MAX);
        let mut abuser_count = 0;
        for n in 0..10_000 {
            t.count(ip(n), t0);
            if n % 50 == 0 {
                abuser_count = t.count(abuser, t0);
            }
            assert!(t.ips.len() <= 100);
        }
        assert_eq!(abuser_count, 200, "the abuser's count was never reset");
        // The oldest sprayed IPs are gone: they start again.
        assert_eq!(t.count(ip(0), t0), 1);
    }

    #[test]
    fn expired_windows_go_before_a_live_one_is_evicted() {
        let mut t = Tracker::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        t.count(ip(1), t0);
        t.count(ip(2), t0);
        t.count(ip(3), t0 + Duration::from_secs(8));
        t.count(ip(4), t0 + Duration::from_secs(12));
        assert_eq!(t.ips.len(), 2);
        assert_eq!(t.count(ip(3), t0 + Duration::from_secs(12)), 2);
    }
}
