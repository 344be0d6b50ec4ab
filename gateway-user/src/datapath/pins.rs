//! Where an interface's pinned objects live, and finding them again.

use std::path::{Path, PathBuf};

use super::{DatapathError, bpffs::BPFFS_ROOT};

/// Pin file of the XDP link.
pub const LINK_PIN: &str = "link";

/// `/sys/fs/bpf/edgegw`: one directory per attached interface.
pub fn root() -> PathBuf {
    std::env::var_os("EDGEGW_BPFFS_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(BPFFS_ROOT).join("edgegw"))
}

/// The pin directory of one interface.
#[derive(Clone, Debug)]
pub struct PinDir {
    pub iface: String,
    pub path: PathBuf,
}

impl PinDir {
    pub fn new(iface: &str) -> PinDir {
        PinDir {
            iface: iface.into(),
            path: root().join(iface),
        }
    }

    pub fn map(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn link(&self) -> PathBuf {
        self.path.join(LINK_PIN)
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    /// Removes every pin in the directory and the directory itself.
    /// Removing the link pin detaches the program once no process holds it.
    pub fn remove(&self) -> Result<(), DatapathError> {
        let io = |action, path: &Path, source| DatapathError::Io {
            action,
            path: path.into(),
            source,
        };
        let entries = match std::fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io("reading", &self.path, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io("reading", &self.path, e))?;
            std::fs::remove_file(entry.path()).map_err(|e| io("unpinning", &entry.path(), e))?;
        }
        std::fs::remove_dir(&self.path).map_err(|e| io("removing", &self.path, e))?;
        // Leave the shared root in place only if other interfaces use it.
        let _ = std::fs::remove_dir(root());
        Ok(())
    }
}

/// Interfaces that have a pin directory.
pub fn pinned_interfaces() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// The pin directory for `iface`, or the only one there is when `None`.
pub fn resolve_iface(iface: Option<&str>) -> Result<PinDir, DatapathError> {
    if let Some(iface) = iface {
        let dir = PinDir::new(iface);
        if !dir.exists() {
            return Err(DatapathError::NotPinned {
                iface: iface.into(),
                dir: dir.path,
            });
        }
        return Ok(dir);
    }
    match pinned_interfaces().as_slice() {
        [] => Err(DatapathError::NothingPinned { dir: root() }),
        [one] => Ok(PinDir::new(one)),
        many => Err(DatapathError::Ambiguous {
            ifaces: many.join(", "),
        }),
    }
}
