//! The edgegw XDP program.
//!
//! Every frame is parsed with bounds checks (`parse`), given exactly one
//! verdict reason (`verdict`, against the DoS maps in `maps`), and counted
//! per CPU in `COUNTERS` (`counters`). Frames that carry no IP (ARP, link
//! control) pass; truncated or inconsistent IP/TCP/UDP headers drop as
//! `malformed`; frames the parser cannot see into follow
//! `verdict::unparsed`. Until the daemon writes a configuration, every
//! parsed packet passes (fail open) unless the operator banned its source.
//! Fail-open paths taken despite a configuration are logged (`events`).
//!
//! Minimum kernel: 5.11 (bpf_ktime_get_coarse_ns; XDP bpf_link needs 5.9,
//! bounded loops 5.3). `bench` holds two bench-only programs.
#![no_std]
#![no_main]

mod bench;
mod counters;
mod events;
mod maps;
mod parse;
mod verdict;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use gateway_common::Reason;

#[xdp]
pub fn edgegw(ctx: XdpContext) -> u32 {
    let reason = classify(&ctx);
    counters::add(reason, ctx.data_end() - ctx.data());
    if reason.is_pass() {
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_DROP
    }
}

#[inline(always)]
fn classify(ctx: &XdpContext) -> Reason {
    let packet = match parse::frame(ctx) {
        Ok(parse::Frame::Ip(packet)) => packet,
        Ok(parse::Frame::NotIp) => return Reason::Passed,
        Ok(parse::Frame::Unparsed) => return verdict::unparsed(),
        Err(parse::Malformed) => return Reason::Malformed,
    };
    match maps::CONFIG.get(0) {
        Some(cfg) if cfg.configured != 0 => verdict::decide(ctx, cfg, &packet, packet.source),
        _ => verdict::bans_only(packet.source),
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
