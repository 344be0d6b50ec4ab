//! DoS state shared by the XDP program and user space: the configuration
//! maps written by the daemon, the CIDR lists and bans, and the per-source
//! token buckets. All maps are pinned next to `COUNTERS`.

/// `Array<DosConfig>`, one entry. Written by the daemon (last, after every
/// other map of a configuration), read per packet. `configured == 0` (the
/// state of a fresh map) means fail open: every parsed packet passes.
pub const CONFIG_MAP: &str = "CONFIG";
/// `Array<Limits>` indexed by port group; group 0 holds the global limits
/// that apply to traffic outside any protected port group.
pub const GROUPS_MAP: &str = "GROUPS";
/// `Array<u32>` of `PORT_SLOTS` entries indexed by `PortKey::slot`: in
/// `PORT_GROUP_MASK` the port group of a protected (protocol, destination
/// port), 0 if not protected; with `FLAG_DROP_UNPROTECTED`, also
/// `PORT_EPHEMERAL` and `PORT_REPLY_SOURCE` marks. An array rather than a
/// hash: one indexed load per packet.
pub const PORTS_MAP: &str = "PORTS";
/// `LruHashMap<SourceKey, SourceState>`: per-source buckets and counts.
pub const SOURCES_MAP: &str = "SOURCES";
/// `LpmTrie<[u8; 4], u32>` / `LpmTrie<[u8; 16], u32>`: the allow and deny
/// lists in one trie per family, so that one lookup answers both. The value
/// of the longest match is `LIST_ALLOW` or `LIST_DENY`; user space marks a
/// deny block that lies inside an allow block as `LIST_ALLOW`, so allow
/// always wins. Written by the daemon from the config.
pub const LISTS_V4_MAP: &str = "LISTS_V4";
pub const LISTS_V6_MAP: &str = "LISTS_V6";
/// `LpmTrie<[u8; 4], u64>` / `LpmTrie<[u8; 16], u64>`: temporary bans; the
/// value is the expiry in CLOCK_MONOTONIC nanoseconds (`bpf_ktime_get_ns`).
/// Written by `edgegw ban` / `unban`.
pub const BANS_V4_MAP: &str = "BANS_V4";
pub const BANS_V6_MAP: &str = "BANS_V6";
/// `Array<u64>`, one entry: the latest expiry of any ban written so far
/// (raised by `edgegw ban` before it inserts). Once it has passed no ban can
/// be active, and the program skips the ban lookups.
pub const BAN_HORIZON_MAP: &str = "BAN_HORIZON";

/// Every map of the object: all of them are pinned so that a restarted
/// daemon adopts the same state.
pub const ALL_MAPS: [&str; 10] = [
    crate::COUNTERS_MAP,
    CONFIG_MAP,
    GROUPS_MAP,
    PORTS_MAP,
    SOURCES_MAP,
    LISTS_V4_MAP,
    LISTS_V6_MAP,
    BANS_V4_MAP,
    BANS_V6_MAP,
    BAN_HORIZON_MAP,
];

/// Port groups including the global group 0.
pub const MAX_GROUPS: u32 = 16;
/// Entries of `PORTS`: every TCP port, then every UDP port.
pub const PORT_SLOTS: u32 = 2 * 65536;
/// Entries of each list trie (allow and deny together).
pub const MAX_LIST_ENTRIES: u32 = 16384;
/// Entries of each ban trie; `edgegw ban` reports a full trie as an error.
pub const MAX_BANS: u32 = 4096;
/// Default size of `SOURCES` (`dos.max_sources`).
pub const DEFAULT_SOURCES: u32 = 65536;

/// `DosConfig::flags`: drop TCP/UDP to ports outside every port group.
pub const FLAG_DROP_UNPROTECTED: u32 = 1;
/// `DosConfig::flags`: drop IPv4 and IPv6 fragments (first and later).
pub const FLAG_DROP_FRAGMENTS: u32 = 2;
/// `DosConfig::flags`: `LISTS_V4` / `LISTS_V6` have entries (else the
/// program skips the lookup).
pub const FLAG_LISTS_V4: u32 = 4;
pub const FLAG_LISTS_V6: u32 = 8;

/// `PORTS` value bits holding the port group.
pub const PORT_GROUP_MASK: u32 = 0xff;
/// `PORTS` mark: the port is in the node's ephemeral range
/// (`net.ipv4.ip_local_port_range`, which covers IPv6 too), where replies
/// to the node's own connections arrive. TCP that cannot open a connection
/// (not SYN without ACK) to such a port is not port filtered.
pub const PORT_EPHEMERAL: u32 = 1 << 8;
/// `PORTS` mark on a UDP slot read by *source* port: UDP from this port
/// (`dos.udp_reply_ports`: DNS 53, NTP 123) to an ephemeral port is a
/// reply and is not port filtered.
pub const PORT_REPLY_SOURCE: u32 = 1 << 9;

/// Values of `LISTS_V4` / `LISTS_V6`.
pub const LIST_ALLOW: u32 = 1;
pub const LIST_DENY: u32 = 2;

pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// The single entry of `CONFIG`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DosConfig {
    /// Non-zero once the daemon has written a complete configuration.
    pub configured: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Applied to IPv6 sources: the configured prefix (default /64), so that
    /// one host spraying addresses of its prefix is one source. Link-local
    /// sources (fe80::/10) are keyed per address instead: every host on the
    /// link shares one fe80::/64, and one of them could drain the others'
    /// bucket.
    pub v6_mask: [u8; 16],
}

/// One token in bucket units: tokens are kept in billionths so that a refill
/// is `elapsed_ns * rate` with integer math (no floats in BPF).
pub const TOKEN: u64 = 1_000_000_000;
/// Largest rate and burst accepted (keeps `burst * TOKEN` within u64).
pub const MAX_RATE: u64 = 1_000_000_000;

/// A token bucket's parameters, precomputed by user space.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Tokens per second; 0 means unlimited.
    pub rate: u64,
    /// Capacity in bucket units (`burst * TOKEN`).
    pub cap: u64,
    /// Nanoseconds to fill an empty bucket (`cap / rate`).
    pub fill_ns: u64,
}

impl Bucket {
    pub const UNLIMITED: Bucket = Bucket {
        rate: 0,
        cap: 0,
        fill_ns: 0,
    };

    /// `rate` tokens per second, up to `burst` at once; both in
    /// 1..=MAX_RATE (user space validates before calling).
    pub const fn new(rate: u64, burst: u64) -> Bucket {
        let cap = burst * TOKEN;
        Bucket {
            rate,
            cap,
            fill_ns: cap / rate,
        }
    }

    /// Refills `tokens` for the time since `at`, then takes one token.
    /// Returns false (and takes nothing) when the bucket is empty.
    #[inline(always)]
    pub fn take(&self, tokens: &mut u64, at: &mut u64, now: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        let elapsed = now.saturating_sub(*at);
        // Below fill_ns, elapsed * rate < cap: no overflow.
        let refilled = if elapsed >= self.fill_ns {
            self.cap
        } else {
            *tokens + elapsed * self.rate
        };
        *tokens = if refilled > self.cap {
            self.cap
        } else {
            refilled
        };
        *at = now;
        if *tokens >= TOKEN {
            *tokens -= TOKEN;
            true
        } else {
            false
        }
    }
}

/// Limits of one port group (entry of `GROUPS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Packets per second per source.
    pub packets: Bucket,
    /// New TCP connections (SYN without ACK) per second per source.
    pub syns: Bucket,
}

/// A protected port: protocol (`PROTO_TCP` / `PROTO_UDP`) and destination
/// port in host byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortKey {
    pub proto: u8,
    pub _pad: u8,
    pub port: u16,
}

impl PortKey {
    /// Index of this port in `PORTS`.
    #[inline(always)]
    pub const fn slot(&self) -> u32 {
        let base = if self.proto == PROTO_UDP { 65536 } else { 0 };
        base + self.port as u32
    }
}

/// Key of `SOURCES`: an IPv4 address (first 4 bytes, rest zero) or an IPv6
/// prefix (masked with `DosConfig::v6_mask`), per port group.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SourceKey {
    pub addr: [u8; 16],
    /// 4 or 6.
    pub family: u8,
    pub group: u8,
    pub _pad: [u8; 2],
}

/// Value of `SOURCES`: two token buckets and what the source sent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceState {
    pub packet_tokens: u64,
    pub packet_at: u64,
    pub syn_tokens: u64,
    pub syn_at: u64,
    /// Packets seen from this source (that reached the bucket check).
    pub packets: u64,
    /// Of those, packets dropped by either bucket.
    pub dropped: u64,
}

impl SourceState {
    /// A new source starts with full buckets.
    pub const fn fresh(limits: &Limits, now: u64) -> SourceState {
        SourceState {
            packet_tokens: limits.packets.cap,
            packet_at: now,
            syn_tokens: limits.syns.cap,
            syn_at: now,
            packets: 0,
            dropped: 0,
        }
    }
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;

/// True for TCP flag combinations no conforming stack sends: SYN+FIN,
/// SYN+RST, no flags at all, and FIN, PSH or URG without ACK.
#[inline(always)]
pub const fn bad_tcp_flags(flags: u8) -> bool {
    let f = flags & 0x3f;
    f == 0
        || (f & (SYN | FIN)) == (SYN | FIN)
        || (f & (SYN | RST)) == (SYN | RST)
        || (f & (FIN | PSH | URG) != 0 && f & ACK == 0)
}

/// True for an IPv6 link-local address (fe80::/10).
#[inline(always)]
pub const fn is_link_local(addr: &[u8; 16]) -> bool {
    addr[0] == 0xfe && addr[1] & 0xc0 == 0x80
}

/// True for a connection opening: SYN without ACK.
#[inline(always)]
pub const fn is_new_connection(flags: u8) -> bool {
    flags & (SYN | ACK) == SYN
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY (all below): repr(C), integer fields and explicit padding
    // fields only, no implicit padding, every bit pattern valid.
    unsafe impl aya::Pod for DosConfig {}
    unsafe impl aya::Pod for Bucket {}
    unsafe impl aya::Pod for Limits {}
    unsafe impl aya::Pod for SourceKey {}
    unsafe impl aya::Pod for SourceState {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills_with_time() {
        let b = Bucket::new(10, 3);
        let (mut t, mut at) = (b.cap, 0);
        for _ in 0..3 {
            assert!(b.take(&mut t, &mut at, 0));
        }
        assert!(!b.take(&mut t, &mut at, 0));
        // 10/s: one token every 100 ms.
        assert!(!b.take(&mut t, &mut at, 99_000_000));
        assert!(b.take(&mut t, &mut at, 100_000_000));
        // A long idle period refills to the burst, not beyond.
        for _ in 0..3 {
            assert!(b.take(&mut t, &mut at, u64::MAX / 2));
        }
        assert!(!b.take(&mut t, &mut at, u64::MAX / 2));
    }

    #[test]
    fn extreme_limits_do_not_overflow() {
        let b = Bucket::new(MAX_RATE, MAX_RATE);
        let (mut t, mut at) = (0, 0);
        assert!(b.take(&mut t, &mut at, b.fill_ns - 1));
        assert!(Bucket::UNLIMITED.take(&mut 0, &mut 0, 0));
    }

    #[test]
    fn tcp_flag_rules() {
        for bad in [0, SYN | FIN, SYN | RST, FIN, PSH, URG, FIN | PSH | URG] {
            assert!(bad_tcp_flags(bad), "{bad:#x}");
        }
        for good in [SYN, SYN | ACK, ACK, RST, RST | ACK, FIN | ACK, PSH | ACK] {
            assert!(!bad_tcp_flags(good), "{good:#x}");
        }
        assert!(is_new_connection(SYN) && !is_new_connection(SYN | ACK));
    }
}
