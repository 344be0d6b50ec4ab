//! Makes sure a BPF filesystem is mounted at /sys/fs/bpf.

use std::path::Path;

use nix::{
    mount::{MsFlags, mount},
    sys::statfs::{BPF_FS_MAGIC, statfs},
};

use super::DatapathError;

pub const BPFFS_ROOT: &str = "/sys/fs/bpf";

/// True if `path` is on a bpffs.
pub fn is_bpffs(path: &Path) -> bool {
    statfs(path).is_ok_and(|st| st.filesystem_type() == BPF_FS_MAGIC)
}

/// Mounts bpffs at /sys/fs/bpf if it is not there yet.
pub fn ensure_mounted() -> Result<(), DatapathError> {
    let root = Path::new(BPFFS_ROOT);
    if is_bpffs(root) {
        return Ok(());
    }
    if !root.is_dir() {
        return Err(DatapathError::Bpffs {
            message: format!("{BPFFS_ROOT} does not exist; is /sys mounted?"),
        });
    }
    mount(
        Some("bpf"),
        root,
        Some("bpf"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|err| DatapathError::Bpffs {
        message: format!(
            "mounting bpffs at {BPFFS_ROOT} failed ({err}); {}",
            super::privilege::bpffs_fix(BPFFS_ROOT)
        ),
    })
}
