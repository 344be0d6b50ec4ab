//! Rare events, logged with aya-log (the `AYA_LOGS` ring buffer, 128 KiB,
//! kernel >= 5.8) and read by the daemon into its own log under the target
//! `edgegw::xdp`. Only fail-open paths land here, never a packet's normal
//! path: a per-source state the LRU would not take, and a port group with
//! no limits slot. Running without a policy (`dos` off) is the configured
//! fail-open mode, not an event: the daemon logs it once when it writes
//! the configuration.
//!
//! Rate limit: these are rare on a healthy node, but a flood can make one
//! frequent (every new source failing its insert under memory pressure).
//! Formatting and submitting a record for each of those packets would put
//! the log's cost on every packet of the flood and fill the ring buffer
//! with copies of one line. So each CPU logs each event at most once per
//! second, with the number it held back since its previous line. The gate
//! is a per-CPU array: no atomics, no contention between CPUs, at most one
//! line per event, CPU and second.

use aya_ebpf::{macros::map, maps::PerCpuArray, programs::XdpContext};
use aya_log_ebpf::{error, warn};

/// Target of every line: the daemon files them under `edgegw::xdp`.
const TARGET: &str = "edgegw::xdp";
const NS_PER_SEC: u64 = 1_000_000_000;

#[derive(Clone, Copy)]
#[repr(u32)]
enum Event {
    SourceInsertFailed = 0,
    SourceEvicted = 1,
    NoGroupLimits = 2,
}
const EVENTS: u32 = 3;

/// One event's gate on one CPU.
#[repr(C)]
struct Gate {
    /// When this CPU last logged the event (coarse monotonic ns).
    logged_at: u64,
    /// Occurrences held back since then.
    held: u64,
}

/// Written only here, per CPU; private to the program (not pinned: a new
/// program starts with open gates).
#[map(name = "LOG_GATE")]
static LOG_GATE: PerCpuArray<Gate> = PerCpuArray::with_max_entries(EVENTS, 0);

/// `Some(held back since the last line)` if this CPU may log `event` now;
/// otherwise counts it as held back.
#[inline(always)]
fn admit(event: Event, now: u64) -> Option<u64> {
    let gate = LOG_GATE.get_ptr_mut(event as u32)?;
    // SAFETY: the pointer comes from the map lookup and the slot belongs to
    // this CPU, so nothing else writes it concurrently.
    let gate = unsafe { &mut *gate };
    if gate.logged_at != 0 && now.wrapping_sub(gate.logged_at) < NS_PER_SEC {
        gate.held += 1;
        return None;
    }
    let held = gate.held;
    gate.logged_at = now;
    gate.held = 0;
    Some(held)
}

/// `SOURCES.insert` failed (`errno`, negative): the source passes unmetered.
#[inline(never)]
pub fn source_insert_failed(ctx: &XdpContext, errno: i32, now: u64) {
    if let Some(held) = admit(Event::SourceInsertFailed, now) {
        error!(
            ctx,
            target: TARGET,
            "SOURCES update failed (error {}): the source passes without rate limits (fail open); {} more on this CPU since the last line",
            errno,
            held
        );
    }
}

/// The source's state was evicted between its insert and the lookup that
/// followed (an LRU at capacity under a flood of new sources).
#[inline(never)]
pub fn source_evicted(ctx: &XdpContext, now: u64) {
    if let Some(held) = admit(Event::SourceEvicted, now) {
        warn!(
            ctx,
            target: TARGET,
            "SOURCES evicted a source right after inserting it: the packet passes without rate limits (fail open); dos.max_sources may be too small; {} more on this CPU since the last line",
            held
        );
    }
}

/// `PORTS` names a group that `GROUPS` has no slot for: a daemon and
/// program that disagree on the map layout. The packet passes.
#[inline(never)]
pub fn no_group_limits(ctx: &XdpContext, group: u32, now: u64) {
    if let Some(held) = admit(Event::NoGroupLimits, now) {
        error!(
            ctx,
            target: TARGET,
            "PORTS names port group {}, which GROUPS has no limits for: the packet passes (fail open); restart edgegw to rewrite the maps; {} more on this CPU since the last line",
            group,
            held
        );
    }
}
