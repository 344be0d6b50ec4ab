//! Makes sure a BPF filesystem is mounted at /sys/fs/bpf.

use std::{ffi::CString, path::Path};

use super::DatapathError;

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
pub const BPFFS_ROOT: &str = "/sys/fs/bpf";

/// True if `path` is on a bpffs.
pub fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid NUL-terminated path and st a properly sized buffer.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_type as i64 == BPF_FS_MAGIC
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
    let target = CString::new(BPFFS_ROOT).expect("no NUL");
    let fstype = CString::new("bpf").expect("no NUL");
    // SAFETY: all pointers are valid NUL-terminated strings; data may be null.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(DatapathError::Bpffs {
            message: format!(
                "mounting bpffs at {BPFFS_ROOT} failed ({err}); mount it with `mount -t bpf bpf {BPFFS_ROOT}` as root"
            ),
        });
    }
    Ok(())
}
