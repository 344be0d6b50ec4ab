//! The DoS verdict for a parsed IP packet, in order: allow list (bypasses
//! everything), deny list, bans, fragment policy, TCP flags, port filter,
//! then the source's packet and new-connection buckets.
//!
//! Anything unexpected (a map lookup that fails, a full LRU) passes: the
//! gateway never blackholes the node because of its own state.

use aya_ebpf::{helpers::bpf_ktime_get_ns, maps::lpm_trie::Key};
use gateway_common::{
    DosConfig, FLAG_DROP_FRAGMENTS, FLAG_DROP_UNPROTECTED, PROTO_TCP, PROTO_UDP, PortKey, Reason,
    SourceKey, SourceState, bad_tcp_flags, is_new_connection,
};

use crate::{
    maps::{
        ALLOW_V4, ALLOW_V6, BANS_V4, BANS_V6, DENY_V4, DENY_V6, GROUPS, PORTS, SOURCES,
    },
    parse::{Fragment, L4, Packet, Source},
};

#[inline(always)]
pub fn decide(cfg: &DosConfig, packet: &Packet, source: Source) -> Reason {
    let now = monotonic_ns();
    match source {
        Source::V4(a) => {
            let key = Key::new(32, a);
            if ALLOW_V4.get(&key).is_some() {
                return Reason::Passed;
            }
            if DENY_V4.get(&key).is_some() {
                return Reason::Denied;
            }
            if BANS_V4.get(&key).is_some_and(|&until| until > now) {
                return Reason::Banned;
            }
        }
        Source::V6(a) => {
            let key = Key::new(128, a);
            if ALLOW_V6.get(&key).is_some() {
                return Reason::Passed;
            }
            if DENY_V6.get(&key).is_some() {
                return Reason::Denied;
            }
            if BANS_V6.get(&key).is_some_and(|&until| until > now) {
                return Reason::Banned;
            }
        }
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
        L4::Udp { dst_port } => (Some((PROTO_UDP, dst_port)), false),
        L4::None | L4::Other => (None, false),
    };
    let group = match port {
        Some((proto, port)) => {
            let key = PortKey { proto, _pad: 0, port };
            // SAFETY: the value is a plain u32 copied out at once.
            match unsafe { PORTS.get(&key) } {
                Some(&g) => g,
                None if cfg.flags & FLAG_DROP_UNPROTECTED != 0 => return Reason::PortFiltered,
                None => 0,
            }
        }
        None => 0,
    };
    buckets(cfg, source, group, syn, now)
}

/// Charges the packet to the source's buckets for its port group.
#[inline(always)]
fn buckets(cfg: &DosConfig, source: Source, group: u32, syn: bool, now: u64) -> Reason {
    let Some(limits) = GROUPS.get(group) else {
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
            let _ = SOURCES.insert(&key, &SourceState::fresh(limits, now), 0);
            match SOURCES.get_ptr_mut(&key) {
                Some(p) => p,
                None => return Reason::Passed,
            }
        }
    };
    // SAFETY: the pointer comes from a successful lookup and stays valid for
    // this program run; concurrent CPUs may race on the same source, which
    // only makes the (approximate) bucket slightly generous.
    let state = unsafe { &mut *state };
    state.packets += 1;
    if !limits
        .packets
        .take(&mut state.packet_tokens, &mut state.packet_at, now)
    {
        state.dropped += 1;
        return Reason::RateLimited;
    }
    if syn && !limits.syns.take(&mut state.syn_tokens, &mut state.syn_at, now) {
        state.dropped += 1;
        return Reason::SynRateLimited;
    }
    Reason::Passed
}

/// CLOCK_MONOTONIC in ns, the clock user space uses for ban expiries.
#[inline(always)]
fn monotonic_ns() -> u64 {
    // SAFETY: bpf_ktime_get_ns has no preconditions.
    unsafe { bpf_ktime_get_ns() }
}
