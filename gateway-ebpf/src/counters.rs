//! Per-CPU packet and byte counters, one slot per verdict reason.

use aya_ebpf::{macros::map, maps::PerCpuArray};
use gateway_common::{COUNTER_SLOTS, Counter, Reason};

/// Written here on every frame; read (summed over CPUs) by `edgegw drops`
/// and `/metrics` through the pinned map.
#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(COUNTER_SLOTS, 0);

#[inline(always)]
pub fn add(reason: Reason, bytes: usize) {
    if let Some(slot) = COUNTERS.get_ptr_mut(reason as u32) {
        // SAFETY: the pointer comes from the map lookup and the slot belongs
        // to this CPU, so nothing else writes it concurrently.
        unsafe {
            (*slot).packets += 1;
            (*slot).bytes += bytes as u64;
        }
    }
}
