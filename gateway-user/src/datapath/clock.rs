//! CLOCK_MONOTONIC, the clock of `bpf_ktime_get_ns`: ban expiries written
//! here are compared with it in the kernel.

use nix::time::{ClockId, clock_gettime};

/// Nanoseconds since boot (excluding suspend), as the XDP program sees it.
pub fn monotonic_ns() -> u64 {
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}
