//! The two bpf(2) commands aya does not expose: opening a pinned object by
//! path and forcing a link to detach even while other processes hold it.

use std::{
    ffi::CString,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::Path,
};

// libc: nix has no bpf(2) wrapper, so the raw syscall and its types.
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_LINK_DETACH: libc::c_long = 34;

/// `union bpf_attr` is at most this large for the commands used here.
#[repr(C, align(8))]
struct Attr([u8; 128]);

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> std::io::Result<i64> {
    // SAFETY: attr is a zero-initialised buffer of the size passed, laid out
    // as the kernel's bpf_attr for `cmd` by the callers below.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut Attr, size_of::<Attr>()) };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Opens a pinned BPF object (BPF_OBJ_GET).
pub fn obj_get(path: &Path) -> std::io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut attr = Attr([0; 128]);
    // bpf_attr.obj_get: __aligned_u64 pathname; __u32 bpf_fd; __u32 file_flags.
    attr.0[..8].copy_from_slice(&(c.as_ptr() as u64).to_ne_bytes());
    let fd = bpf(BPF_OBJ_GET, &mut attr)?;
    // SAFETY: the kernel returned a new file descriptor that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Detaches a link from its hook now (BPF_LINK_DETACH, kernel >= 5.9),
/// whoever else holds it open.
pub fn link_detach(link: &OwnedFd) -> std::io::Result<()> {
    let mut attr = Attr([0; 128]);
    // bpf_attr.link_detach: __u32 link_fd.
    attr.0[..4].copy_from_slice(&(link.as_raw_fd() as u32).to_ne_bytes());
    bpf(BPF_LINK_DETACH, &mut attr).map(|_| ())
}
