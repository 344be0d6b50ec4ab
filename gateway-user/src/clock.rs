//! The clocks: RFC 3339 times (from the model, shared with the control
//! plane) and a cheap coarse monotonic clock.

use std::time::Duration;

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
