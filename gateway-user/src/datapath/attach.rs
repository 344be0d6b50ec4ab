//! Loading the embedded XDP object, attaching it to an interface and pinning
//! its maps and link; and the reverse.

use aya::{
    Ebpf, EbpfLoader,
    programs::{
        Xdp, XdpMode as AyaMode,
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use gateway_common::{ALL_MAPS, PROGRAM_NAME, SOURCES_MAP};
use nix::{
    errno::Errno,
    fcntl::{Flock, FlockArg},
};

use super::{
    DatapathError, PinDir, XdpMode, bpffs,
    error::{is_permission_error, os_error},
    kernel_log::KernelLog,
    privilege, sys,
};
use crate::EBPF_OBJECT;

/// The XDP program attached to one interface, with its maps pinned.
/// Dropping it without `detach` leaves the pins (and so the program) in place.
pub struct Attachment {
    /// Keeps the maps' and program's file descriptors for map access.
    ebpf: Ebpf,
    dir: PinDir,
    pub mode: XdpMode,
    /// True when the program, link and maps were already pinned (a restart):
    /// the program was replaced atomically and the maps' state kept.
    pub adopted: bool,
    /// flock on the pin directory, held while this daemon runs: a second
    /// daemon on the same interface would fight over the same pins.
    _lock: Flock<std::fs::File>,
    /// Forwards the program's log into ours while attached (None when it
    /// could not start: a warning was logged).
    _log: Option<KernelLog>,
}

impl Attachment {
    pub fn iface(&self) -> &str {
        &self.dir.iface
    }

    pub fn pin_dir(&self) -> &PinDir {
        &self.dir
    }

    pub fn ebpf(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Exits leaving the program attached and its state pinned, for the
    /// next `edgegw run` to adopt.
    pub fn release(self) {
        drop(self.ebpf);
    }

    /// Detaches the program and removes every pin.
    pub fn detach(self) -> Result<(), DatapathError> {
        let Attachment { ebpf, dir, .. } = self;
        let result = detach_dir(&dir);
        drop(ebpf);
        result
    }
}

/// Removes the pins on drop unless disarmed: a failed attach leaves nothing.
struct CleanupGuard(Option<PinDir>);

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = dir.remove();
        }
    }
}

/// Loads the embedded program and attaches it to `iface`, with every map
/// pinned. If edgegw is already pinned there (a restart, an upgrade, or a
/// daemon that was killed), the pinned maps are reused and the new program
/// replaces the old one atomically on the pinned link: no gap, no second
/// attachment. `max_sources` sizes a newly created `SOURCES` map.
pub fn attach(iface: &str, mode: XdpMode, max_sources: u32) -> Result<Attachment, DatapathError> {
    let aya_mode = match mode {
        XdpMode::Native => AyaMode::Driver,
        XdpMode::Skb => AyaMode::Skb,
        XdpMode::Off => unreachable!("callers do not attach with --xdp-mode off"),
    };
    if_index(iface)?;
    privilege::check()?;
    bpffs::ensure_mounted()?;

    let dir = PinDir::new(iface);
    let adopted = dir.link().exists();
    std::fs::create_dir_all(&dir.path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            privilege::not_permitted("creating the pin directory")
        } else {
            DatapathError::Io {
                action: "creating",
                path: dir.path.clone(),
                source,
            }
        }
    })?;
    let lock = lock_dir(&dir)?;
    super::compat::check_pinned_maps(&dir)?;
    // A failed first attach leaves nothing; a failed adoption leaves the
    // running protection as it was.
    let guard = CleanupGuard((!adopted).then(|| dir.clone()));

    let mut loader = EbpfLoader::new();
    for name in ALL_MAPS {
        loader.map_pin_path(name, dir.map(name));
    }
    let mut ebpf = loader
        .map_max_entries(SOURCES_MAP, max_sources)
        .load(EBPF_OBJECT)
        .map_err(|e| DatapathError::ebpf("loading the XDP program", e))?;
    let program: &mut Xdp = ebpf
        .program_mut(PROGRAM_NAME)
        .ok_or_else(|| DatapathError::Ebpf {
            action: "finding the XDP program",
            source: format!("program {PROGRAM_NAME} missing from the embedded object").into(),
        })?
        .try_into()
        .map_err(|e| DatapathError::ebpf("loading the XDP program", e))?;
    super::verify::load(program)
        .map_err(|e| DatapathError::ebpf("verifying the XDP program", e))?;
    if adopted {
        let pinned = PinnedLink::from_pin(dir.link())
            .map_err(|e| DatapathError::ebpf("opening the pinned XDP link", e))?;
        let link = XdpLink::try_from(FdLink::from(pinned))
            .map_err(|e| DatapathError::ebpf("opening the pinned XDP link", e))?;
        let link_id = program
            .attach_to_link(link)
            .map_err(|e| DatapathError::ebpf("replacing the XDP program on its link", e))?;
        // Closing our descriptor leaves the link to its pin.
        drop(program.take_link(link_id));
        let log = start_log(&mut ebpf);
        return Ok(Attachment {
            ebpf,
            dir,
            mode,
            adopted,
            _lock: lock,
            _log: log,
        });
    }
    let link_id = program.attach(iface, aya_mode).map_err(|e| {
        if is_permission_error(&e) {
            return privilege::not_permitted("attaching XDP");
        }
        match os_error(&e) {
            Some(Errno::EBUSY | Errno::EEXIST) => DatapathError::ForeignProgram {
                iface: iface.into(),
            },
            Some(Errno::EOPNOTSUPP | Errno::EINVAL) if mode == XdpMode::Native => {
                DatapathError::NativeUnsupported {
                    iface: iface.into(),
                }
            }
            _ => DatapathError::ebpf("attaching XDP", e),
        }
    })?;
    let link = program
        .take_link(link_id)
        .map_err(|e| DatapathError::ebpf("taking the XDP link", e))?;
    let fd_link =
        FdLink::try_from(link).map_err(|e| DatapathError::ebpf("pinning the XDP link", e))?;
    // The pinned link keeps the program attached; the file is what
    // `edgegw detach` removes.
    let _pinned = fd_link
        .pin(dir.link())
        .map_err(|e| DatapathError::ebpf("pinning the XDP link", e))?;

    let mut guard = guard;
    guard.0 = None;
    let log = start_log(&mut ebpf);
    Ok(Attachment {
        ebpf,
        dir,
        mode,
        adopted,
        _lock: lock,
        _log: log,
    })
}

/// The program's log is for operators, not protection: a reader that cannot
/// start is a warning, never a failed attach.
fn start_log(ebpf: &mut Ebpf) -> Option<KernelLog> {
    KernelLog::start(ebpf)
        .inspect_err(|error| {
            tracing::warn!(%error, "the XDP program's log is not read: its fail-open events will not appear here");
        })
        .ok()
}

/// Detaches whatever edgegw pinned for `iface` (from any process) and
/// removes the pins. Returns an error if nothing was pinned.
pub fn detach_pinned(iface: &str) -> Result<(), DatapathError> {
    let dir = PinDir::new(iface);
    if !dir.exists() {
        return Err(DatapathError::NotPinned {
            iface: iface.into(),
            dir: dir.path,
        });
    }
    detach_dir(&dir)
}

fn detach_dir(dir: &PinDir) -> Result<(), DatapathError> {
    let link_path = dir.link();
    if link_path.exists() {
        // Force the detach so that a hung daemon holding the link open cannot
        // keep the program attached.
        let fd = sys::obj_get(&link_path).map_err(|source| DatapathError::Io {
            action: "opening the pinned link",
            path: link_path.clone(),
            source,
        })?;
        sys::link_detach(&fd).map_err(|source| DatapathError::Io {
            action: "detaching the link",
            path: link_path.clone(),
            source,
        })?;
    }
    dir.remove()
}

/// Takes an exclusive, non-blocking flock on the pin directory, held
/// until the returned value is dropped.
fn lock_dir(dir: &PinDir) -> Result<Flock<std::fs::File>, DatapathError> {
    let file = std::fs::File::open(&dir.path).map_err(|source| DatapathError::Io {
        action: "opening",
        path: dir.path.clone(),
        source,
    })?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == Errno::EWOULDBLOCK {
            DatapathError::AlreadyRunning {
                iface: dir.iface.clone(),
            }
        } else {
            DatapathError::Io {
                action: "locking",
                path: dir.path.clone(),
                source: errno.into(),
            }
        }
    })
}

fn if_index(iface: &str) -> Result<u32, DatapathError> {
    nix::net::if_::if_nametoindex(iface).map_err(|_| DatapathError::InterfaceNotFound {
        iface: iface.into(),
    })
}
