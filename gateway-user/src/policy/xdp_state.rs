//! What the XDP program knows about a client address (allow and deny
//! lists, bans), for `ip-filter` and client-IP keyed limits: the proxy
//! applies the same source state as the kernel, e.g. to clients that reach
//! it over a path XDP does not see (another interface, a local sidecar).
//!
//! Each address is looked up in the pinned maps (two syscalls) at most
//! once per `TTL`, so a ban or an `edgegw unban` takes effect within
//! 100 ms, and a busy client costs one lookup per 100 ms, not per request.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{
    clock::monotonic_ns,
    datapath::{PinDir, SourceMaps, Standing},
};

const TTL: Duration = Duration::from_millis(100);
/// Cached addresses; the cache is emptied when full (memory stays bounded).
const MAX_CACHED: usize = 65_536;

pub struct XdpState {
    pins: PinDir,
    /// Opened on first use: the pins appear once XDP is attached.
    maps: Mutex<Option<SourceMaps>>,
    cache: Mutex<HashMap<IpAddr, (Instant, Standing)>>,
}

impl XdpState {
    pub fn new(pins: PinDir) -> XdpState {
        XdpState {
            pins,
            maps: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn standing(&self, ip: IpAddr) -> Standing {
        let now = Instant::now();
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, standing)) = cache.get(&ip)
                && now.duration_since(*at) < TTL
            {
                return *standing;
            }
        }
        let standing = self.lookup(ip);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(ip, (now, standing));
        standing
    }

    /// Denied or banned in XDP (and not on its allow list).
    pub fn refuses(&self, ip: IpAddr) -> bool {
        self.standing(ip).refused(monotonic_ns())
    }

    /// Fails open, as XDP does: unreadable maps mean "not listed".
    fn lookup(&self, ip: IpAddr) -> Standing {
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        if maps.is_none() {
            match SourceMaps::open(&self.pins) {
                Ok(m) => *maps = Some(m),
                Err(e) => {
                    tracing::debug!(error = %e, "XDP source state not readable yet");
                    return Standing::Unlisted;
                }
            }
        }
        let Some(m) = maps.as_ref() else {
            return Standing::Unlisted;
        };
        m.standing(ip).unwrap_or_else(|e| {
            tracing::warn!(client = %ip, error = %e, "reading the XDP source state failed");
            // Reopen next time (the pins may have been replaced).
            *maps = None;
            Standing::Unlisted
        })
    }
}

impl std::fmt::Debug for XdpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "XdpState({})", self.pins.iface)
    }
}
