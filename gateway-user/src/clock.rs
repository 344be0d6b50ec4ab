//! The gateway's clocks, in one place: RFC 3339 times (from the model,
//! shared with the control plane), Unix seconds, the kernel's monotonic
//! clock that XDP ban expiries use, and a cheap coarse monotonic clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use gateway_model::clock::{rfc3339_millis, rfc3339_secs};

use nix::time::{ClockId, clock_gettime};

/// The monotonic clock at tick resolution (a few milliseconds), without
/// the TSC read `Instant::now` costs: for per-request bookkeeping of
/// timeouts counted in seconds.
pub fn coarse_monotonic() -> Duration {
    // A vDSO read that cannot fail for a clock the kernel has (Linux >=
    // 2.6.32); zero, as an unset timespec was before, if it ever did.
    clock_gettime(ClockId::CLOCK_MONOTONIC_COARSE)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// CLOCK_MONOTONIC in nanoseconds since boot (excluding suspend): the clock
/// of `bpf_ktime_get_ns`, so ban expiries written with it compare right in
/// the kernel.
pub fn monotonic_ns() -> u64 {
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}
