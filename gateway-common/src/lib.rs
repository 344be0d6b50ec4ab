//! Types shared by the XDP program (`gateway-ebpf`) and user space
//! (`gateway-user`). Kernel and user space both import these; there is no
//! second, hand-synced copy of any layout.
#![no_std]
#![deny(unsafe_code)]

#[cfg_attr(
    feature = "user",
    expect(
        unsafe_code,
        reason = "its `pod` module implements aya::Pod for the repr(C) map layouts (user feature)"
    )
)]
pub mod dos;
#[cfg_attr(
    feature = "user",
    expect(
        unsafe_code,
        reason = "implements aya::Pod for the repr(C) Counter (user feature)"
    )
)]
pub mod maps;
pub mod reason;

pub use dos::*;
pub use maps::*;
pub use reason::Reason;
