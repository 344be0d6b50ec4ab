//! The DoS verdict for a parsed IP packet, in order: allow list (bypasses
//! everything) and deny list (one trie lookup), bans, fragment policy,
//! neighbour discovery (exempt from what follows), TCP flags, port filter
//! (replies to the node's own connections pass it), then the source's packet
//! and new-connection buckets. And `unparsed`, the one rule for frames the
//! parser cannot see into.
//!
//! Anything unexpected (a map lookup that fails, a full LRU) passes: the
//! gateway never blackholes the node because of its own state. Each such
//! fail-open path is logged, rate-limited, through `events`.

use aya_ebpf::{helpers::bpf_ktime_get_coarse_ns, maps::lpm_trie::Key, programs::XdpContext};
use gateway_common::{
    DosConfig, FLAG_DROP_FRAGMENTS, FLAG_DROP_UNPROTECTED, FLAG_LISTS_V4, FLAG_LISTS_V6,
    LIST_ALLOW, LIST_DENY, PORT_EPHEMERAL, PORT_GROUP_MASK, PORT_REPLY_SOURCE, PROTO_TCP,
    PROTO_UDP, PortKey, Reason, SourceKey, SourceState, bad_tcp_flags, is_link_local,
    is_new_connection,
};

use crate::{
    events,
    maps::{BAN_HORIZON, BANS_V4, BANS_V6, CONFIG, GROUPS, LISTS_V4, LISTS_V6, PORTS, SOURCES},
    parse::{Fragment, L4, Packet, Source},
};

/// The one rule for a frame the parser cannot see into (`Frame::Unparsed`:
/// a deeper VLAN stack, an encapsulation it does not parse, a longer IPv6
/// extension chain): its source and ports are unknown, so it could carry a
/// denied or banned source past every check. It drops as `unparsed`
/// whenever anything is enforced (a policy, or a ban that may be active),
/// and passes only when the program enforces nothing at all (fail open).
#[inline(always)]
pub fn unparsed() -> Reason {
    let configured = CONFIG.get(0).is_some_and(|c| c.configured != 0);
    if configured || bans_may_be_active(monotonic_ns()) {
        Reason::Unparsed
    } else {
        Reason::Passed
    }
}

/// Without a policy only bans are enforced: an operator's `edgegw ban` is
/// never silently ignored. Everything else passes (fail open).
#[inline(always)]
pub fn bans_only(source: Source) -> Reason {
    if banned(source, monotonic_ns()) {
        Reason::Banned
    } else {
        Reason::Passed
    }
}

/// False once the latest ban expiry ever written has passed (the usual
/// case: no bans), so that no trie lookup is needed.
#[inline(always)]
fn bans_may_be_active(now: u64) -> bool {
    BAN_HORIZON.get(0).is_some_and(|&h| h > now)
}

/// True if a ban covering `source` has not expired.
#[inline(always)]
fn banned(source: Source, now: u64) -> bool {
    if !bans_may_be_active(now) {
        return false;
    }
    let until = match source {
        Source::V4(a) => BANS_V4.get(Key::new(32, a)),
        Source::V6(a) => BANS_V6.get(Key::new(128, a)),
    };
    until.is_some_and(|&until| until > now)
}

#[inline(always)]
pub fn decide(ctx: &XdpContext, cfg: &DosConfig, packet: &Packet, source: Source) -> Reason {
    // One trie lookup answers allow and deny; empty lists cost none.
    let listed = match source {
        Source::V4(a) if cfg.flags & FLAG_LISTS_V4 != 0 => LISTS_V4.get(Key::new(32, a)),
        Source::V6(a) if cfg.flags & FLAG_LISTS_V6 != 0 => LISTS_V6.get(Key::new(128, a)),
        _ => None,
    };
    match listed {
        Some(&LIST_ALLOW) => return Reason::Passed,
        Some(&LIST_DENY) => return Reason::Denied,
        _ => {}
    }
    // Read the clock only past the lists: a denied packet never needs it.
    let now = monotonic_ns();
    if banned(source, now) {
        return Reason::Banned;
    }
    if packet.fragment != Fragment::No && cfg.flags & FLAG_DROP_FRAGMENTS != 0 {
        return Reason::Fragment;
    }
    let (port, syn) = match packet.l4 {
        L4::Tcp { dst_port, flags } => {
            if bad_tcp_flags(flags) {
                return Reason::BadTcpFlags;
            }
            (Some((PROTO_TCP, dst_port)), is_new_connection(flags))
        }
        L4::Udp { dst_port, .. } => (Some((PROTO_UDP, dst_port)), false),
        // Any host on the link can send it, with any source (`::` for
        // duplicate address detection): a bucket it could drain would
        // starve its neighbours' address resolution. Lists and bans hold.
        L4::NeighbourDiscovery => return Reason::Passed,
        L4::None | L4::Other => (None, false),
    };
    let group = match port {
        Some((proto, port)) => {
            let key = PortKey {
                proto,
                _pad: 0,
                port,
            };
            let marks = PORTS.get(key.slot()).copied().unwrap_or(0);
            let group = marks & PORT_GROUP_MASK;
            if group == 0 && cfg.flags & FLAG_DROP_UNPROTECTED != 0 && !is_reply(marks, &packet.l4)
            {
                return Reason::PortFiltered;
            }
            group
        }
        None => 0,
    };
    buckets(ctx, cfg, source, group, syn, now)
}

/// Traffic that answers a connection the node opened (to a backend, the
/// control plane, a resolver): TCP that cannot open a connection, or UDP
/// from a reply source port, to the ephemeral range. It still goes through
/// the lists, bans, flag checks and the global buckets.
#[inline(always)]
fn is_reply(marks: u32, l4: &L4) -> bool {
    if marks & PORT_EPHEMERAL == 0 {
        return false;
    }
    match *l4 {
        L4::Tcp { flags, .. } => !is_new_connection(flags),
        L4::Udp { src_port, .. } => {
            let from = PortKey {
                proto: PROTO_UDP,
                _pad: 0,
                port: src_port,
            };
            PORTS
                .get(from.slot())
                .is_some_and(|&m| m & PORT_REPLY_SOURCE != 0)
        }
        _ => false,
    }
}

/// Charges the packet to the source's buckets for its port group.
#[inline(always)]
fn buckets(
    ctx: &XdpContext,
    cfg: &DosConfig,
    source: Source,
    group: u32,
    syn: bool,
    now: u64,
) -> Reason {
    let Some(limits) = GROUPS.get(group) else {
        events::no_group_limits(ctx, group, now);
        return Reason::Passed;
    };
    let mut key = SourceKey {
        addr: [0; 16],
        family: 4,
        group: group as u8,
        _pad: [0; 2],
    };
    match source {
        Source::V4(a) => key.addr[..4].copy_from_slice(&a),
        // Link-local: per address, whatever the prefix (see DosConfig).
        Source::V6(a) if is_link_local(&a) => {
            key.family = 6;
            key.addr = a;
        }
        Source::V6(a) => {
            key.family = 6;
            for i in 0..16 {
                key.addr[i] = a[i] & cfg.v6_mask[i];
            }
        }
    }
    let state = match SOURCES.get_ptr_mut(&key) {
        Some(p) => p,
        None => {
            if let Err(errno) = SOURCES.insert(&key, &SourceState::fresh(limits, now), 0) {
                events::source_insert_failed(ctx, errno, now);
                return Reason::Passed;
            }
            match SOURCES.get_ptr_mut(&key) {
                Some(p) => p,
                None => {
                    events::source_evicted(ctx, now);
                    return Reason::Passed;
                }
            }
        }
    };
    // SAFETY: the pointer comes from a successful lookup and stays valid for
    // this program run. Other CPUs may update the same source concurrently:
    // plain u64 fields, so a lost update only makes the bucket and counts
    // approximate (slightly generous), never invalid.
    let state = unsafe { &mut *state };
    state.packets += 1;
    if !limits
        .packets
        .take(&mut state.packet_tokens, &mut state.packet_at, now)
    {
        state.dropped += 1;
        return Reason::RateLimited;
    }
    if syn
        && !limits
            .syns
            .take(&mut state.syn_tokens, &mut state.syn_at, now)
    {
        state.dropped += 1;
        return Reason::SynRateLimited;
    }
    Reason::Passed
}

/// CLOCK_MONOTONIC_COARSE in ns (kernel >= 5.11): the clock user space
/// writes ban expiries in, at tick resolution, which is plenty for bans and
/// token refills and much cheaper per packet than the precise clock.
#[inline(always)]
fn monotonic_ns() -> u64 {
    // SAFETY: bpf_ktime_get_coarse_ns has no preconditions.
    unsafe { bpf_ktime_get_coarse_ns() }
}
