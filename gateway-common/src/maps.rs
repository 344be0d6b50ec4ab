//! Map names, sizes and value layouts.
//!
//! Maps are pinned by name under `/sys/fs/bpf/edgegw/<iface>/`; the names
//! below are both the ELF map names and the pin file names.

/// Name of the XDP program in the object file.
pub const PROGRAM_NAME: &str = "edgegw";

/// `PerCpuArray<Counter>` indexed by [`crate::Reason`]. Written by the XDP
/// program, read by `edgegw drops` and the metrics endpoint. Kernel >= 4.6.
pub const COUNTERS_MAP: &str = "COUNTERS";

/// Number of counter slots. Larger than the number of reasons so that new
/// reasons can be added without changing the map layout of pinned maps.
pub const COUNTER_SLOTS: u32 = 16;

/// Packets and bytes seen for one verdict reason on one CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}

#[cfg(feature = "user")]
// SAFETY: repr(C), two u64 fields, no padding, every bit pattern valid.
unsafe impl aya::Pod for Counter {}
