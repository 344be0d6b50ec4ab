//! Types shared by the XDP program (`gateway-ebpf`) and user space
//! (`gateway-user`). Kernel and user space both import these; there is no
//! second, hand-synced copy of any layout.
#![no_std]

pub mod dos;
pub mod maps;
pub mod reason;

pub use dos::*;
pub use maps::*;
pub use reason::Reason;
