//! Errors of the datapath, each phrased so that the operator knows the fix.

use nix::errno::Errno;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error(
        "interface \"{iface}\" not found; list interfaces with `ip link` and set xdp.iface or --iface"
    )]
    InterfaceNotFound { iface: String },
    /// `fix` depends on where the daemon runs (`privilege::not_permitted`).
    #[error("permission denied {action}: {fix}")]
    NotPermitted { action: &'static str, fix: String },
    #[error(
        "interface \"{iface}\" already has an XDP program that edgegw did not attach; remove it with `ip link set dev {iface} xdp off` (or run with --xdp-mode off)"
    )]
    ForeignProgram { iface: String },
    #[error(
        "another edgegw is already running on \"{iface}\"; stop it first (its XDP program stays pinned and is adopted by the next `edgegw run`)"
    )]
    AlreadyRunning { iface: String },
    #[error(
        "the pinned map {map} of \"{iface}\" comes from an incompatible edgegw version; `edgegw detach --iface {iface}` removes it (and the state it holds), then start again"
    )]
    IncompatiblePin { map: &'static str, iface: String },
    #[error("interface \"{iface}\" does not support native XDP; use --xdp-mode skb")]
    NativeUnsupported { iface: String },
    #[error("bpffs: {message}")]
    Bpffs { message: String },
    #[error("nothing pinned for interface \"{iface}\" ({dir}): is `edgegw run` attached to it?")]
    NotPinned { iface: String, dir: PathBuf },
    #[error("nothing pinned under {dir}: no edgegw XDP program is attached on this host")]
    NothingPinned { dir: PathBuf },
    #[error("several interfaces are attached ({ifaces}); choose one with --iface")]
    Ambiguous { ifaces: String },
    #[error("{action} the pinned map {name}: {source}")]
    Map {
        name: &'static str,
        action: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error(
        "the ban list is full ({max} entries per address family); lift bans with `edgegw unban CIDR`, ban a wider CIDR, or wait for bans to expire"
    )]
    BansFull { max: u32 },
    #[error("{cidr} is not banned; `edgegw bans` lists the active bans")]
    NotBanned { cidr: String },
    #[error("{action}: {source}")]
    Ebpf {
        action: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl DatapathError {
    /// Wraps a map error, recognising the permission case.
    pub(crate) fn map(
        name: &'static str,
        action: &'static str,
        source: aya::maps::MapError,
    ) -> Self {
        if is_permission_error(&source) {
            return super::privilege::not_permitted("opening the pinned maps");
        }
        DatapathError::Map {
            name,
            action,
            source,
        }
    }

    /// Wraps an aya error, recognising the permission case.
    pub(crate) fn ebpf<E>(action: &'static str, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        if is_permission_error(&source) {
            return super::privilege::not_permitted(action);
        }
        DatapathError::Ebpf {
            action,
            source: Box::new(source),
        }
    }
}

/// Walks the error chain looking for EPERM/EACCES.
pub(crate) fn is_permission_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.raw_os_error().map(Errno::from_raw),
                Some(Errno::EPERM | Errno::EACCES)
            )
        {
            return true;
        }
        let text = e.to_string();
        if text.contains("Operation not permitted") || text.contains("Permission denied") {
            return true;
        }
        cur = e.source();
    }
    false
}

/// The raw OS error anywhere in the chain.
pub(crate) fn os_error(err: &(dyn std::error::Error + 'static)) -> Option<Errno> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(code) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.raw_os_error())
        {
            return Some(Errno::from_raw(code));
        }
        cur = e.source();
    }
    None
}
