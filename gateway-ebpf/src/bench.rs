//! Bench-only programs, loaded by `cargo xtask bench xdp` and never
//! attached by edgegw: `edgegw_baseline`, the empty program the real one is
//! measured against; `edgegw_drop_all`, the cheapest possible dropper, the
//! reference for the cost of the veth path itself; and `edgegw_flood`, the traffic generator run with
//! BPF_PROG_TEST_RUN live frames (it transmits every frame back out of its
//! ingress interface, with a random IPv4 source in 10.0.0.0/8).

use aya_ebpf::{
    bindings::xdp_action, helpers::bpf_get_prandom_u32, macros::xdp, programs::XdpContext,
};

/// Offset of the IPv4 source address in an untagged Ethernet frame.
const IPV4_SRC: usize = 14 + 12;

#[xdp]
pub fn edgegw_baseline(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[xdp]
pub fn edgegw_drop_all(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_DROP
}

#[xdp]
pub fn edgegw_flood(ctx: XdpContext) -> u32 {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + IPV4_SRC + 4 > end {
        return xdp_action::XDP_ABORTED;
    }
    // SAFETY: bpf_get_prandom_u32 has no preconditions.
    let r = unsafe { bpf_get_prandom_u32() }.to_be_bytes();
    let src = (start + IPV4_SRC) as *mut [u8; 4];
    // SAFETY: the four bytes at IPV4_SRC were bounds-checked above.
    unsafe { *src = [10, r[0], r[1], r[2]] };
    xdp_action::XDP_TX
}
