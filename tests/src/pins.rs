//! Removes what a daemon left pinned for an interface (by design, edgegw
//! keeps its XDP program and maps pinned when it exits) at the end of a
//! test, also when the test panics.

use std::path::{Path, PathBuf};

/// On drop: `edgegw detach --iface IFACE` if anything is still pinned.
pub struct PinGuard {
    pub iface: String,
}

impl PinGuard {
    pub fn new(iface: &str) -> PinGuard {
        PinGuard {
            iface: iface.into(),
        }
    }

    pub fn dir(&self) -> PathBuf {
        Path::new("/sys/fs/bpf/edgegw").join(&self.iface)
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        if self.dir().exists() {
            let _ = crate::process::edgegw(&["detach", "--iface", &self.iface]);
        }
    }
}
