//! Checking, before touching anything, that this process may load and
//! attach XDP programs.

use super::DatapathError;

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// The effective capability set of this process, from /proc/self/status.
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

/// Fails with one clear error unless the process has CAP_NET_ADMIN and
/// CAP_BPF (or CAP_SYS_ADMIN, which implies it on older kernels).
pub fn check() -> Result<(), DatapathError> {
    let Some(caps) = effective_caps() else {
        return Ok(()); // cannot tell; the syscalls will say.
    };
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    if has(CAP_NET_ADMIN) && (has(CAP_BPF) || has(CAP_SYS_ADMIN)) {
        Ok(())
    } else {
        Err(DatapathError::NotPermitted {
            action: "attaching XDP",
        })
    }
}
