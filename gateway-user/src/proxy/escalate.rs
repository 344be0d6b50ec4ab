//! Escalation of L7 abuse to the kernel: counts each client IP's 401/403/429
//! (configurable) answers in a fixed window and, past the threshold, bans
//! the IP in the pinned XDP ban map, where its packets then drop before
//! they reach the proxy.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{
    config::Escalation,
    datapath::{self, Cidr, PinDir},
};

/// Client IPs tracked at once; when full, expired windows are dropped and,
/// if none expired, new IPs are not tracked until some do (memory stays
/// bounded under an address spray; XDP's own limits handle those).
const MAX_TRACKED: usize = 65_536;

pub struct Escalator {
    settings: Escalation,
    pins: PinDir,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Escalator {
    pub fn new(settings: Escalation, pins: PinDir) -> Escalator {
        Escalator {
            settings,
            pins,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one answer; bans `ip` when it goes over the threshold.
    pub fn observe(&self, ip: IpAddr, status: u16) {
        if !self.settings.statuses.contains(&status) {
            return;
        }
        let now = Instant::now();
        let over = {
            let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            if windows.len() >= MAX_TRACKED && !windows.contains_key(&ip) {
                let window = self.settings.window;
                windows.retain(|_, (start, _)| now.duration_since(*start) < window);
                if windows.len() >= MAX_TRACKED {
                    return;
                }
            }
            let entry = windows.entry(ip).or_insert((now, 0));
            if now.duration_since(entry.0) >= self.settings.window {
                *entry = (now, 0);
            }
            entry.1 += 1;
            let over = entry.1 > self.settings.threshold;
            if over {
                windows.remove(&ip);
            }
            over
        };
        if over {
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
