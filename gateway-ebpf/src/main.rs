//! The edgegw XDP program.
//!
//! Every frame is parsed with bounds checks (`parse`), given exactly one
//! verdict reason, and counted per CPU in `COUNTERS` (`counters`). Frames that
//! are not IP pass; truncated or inconsistent IP/TCP/UDP headers drop as
//! `malformed`. Minimum kernel: 5.9 (XDP bpf_link), bounded loops need 5.3.
#![no_std]
#![no_main]

mod counters;
mod parse;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use gateway_common::Reason;

#[xdp]
pub fn edgegw(ctx: XdpContext) -> u32 {
    let reason = match parse::packet(&ctx) {
        Ok(_packet) => Reason::Passed,
        Err(parse::Malformed) => Reason::Malformed,
    };
    counters::add(reason, ctx.data_end() - ctx.data());
    if reason.is_pass() {
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_DROP
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
