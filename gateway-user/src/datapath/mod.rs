//! The kernel half of the gateway, seen from user space: loading and
//! attaching the XDP program, pinning its maps and link, and reading them.
//!
//! Everything for one interface lives under `/sys/fs/bpf/edgegw/<iface>/`:
//! one file per map (named as in `gateway_common`) and `link`, the XDP link.

mod attach;
mod bans;
mod bpffs;
mod compat;
mod counters;
mod error;
#[expect(
    unsafe_code,
    reason = "registers the log ring buffer's descriptor with tokio (AsyncFd::register_with_interest is unsafe: the caller vouches the fd stays open)"
)]
mod kernel_log;
mod maps;
mod pins;
mod policy;
mod privilege;
mod sources;
mod standing;
#[expect(
    unsafe_code,
    reason = "issues bpf(2) directly: no safe crate wraps BPF_OBJ_GET and BPF_LINK_DETACH"
)]
mod sys;
mod verify;

pub use attach::{Attachment, attach, detach_pinned};
pub use bans::{Ban, ban, list as list_bans, unban};
pub use bpffs::ensure_mounted as ensure_bpffs;
pub use counters::{ReasonTotals, read_counters};
pub use error::DatapathError;
pub use gateway_model::{
    cidr::{Cidr, mask as cidr_mask},
    config::{XdpMode, ephemeral_ports},
};
pub use kernel_log::{KernelLog, TARGET as LOG_TARGET, ToTracing};
pub use pins::{PinDir, pinned_interfaces, resolve_iface};
pub use policy::apply as apply_policy;
pub use sources::{SourceTotals, top};
pub use standing::{SourceMaps, Standing};
pub use verify::load as load_program;
