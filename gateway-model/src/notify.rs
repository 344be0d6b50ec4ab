//! The sd_notify(3) protocol, implemented directly: one datagram of
//! `KEY=VALUE` lines to the Unix socket named by `$NOTIFY_SOCKET` (a path,
//! or an abstract-namespace name written with a leading '@').
//!
//! Without `$NOTIFY_SOCKET` (not started by systemd) every call is a no-op,
//! so the daemon runs the same way from a shell.

use std::{
    os::unix::net::{SocketAddr, UnixDatagram},
    time::Duration,
};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("NOTIFY_SOCKET=\"{socket}\" is not a usable Unix socket address: {source}")]
    Address {
        socket: String,
        #[source]
        source: std::io::Error,
    },
    #[error("creating the sd_notify socket: {0}")]
    Socket(#[source] std::io::Error),
}

/// A connection to the service manager's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`; a notifier that does nothing when it is unset.
    pub fn from_env() -> Result<Notifier, NotifyError> {
        let Some(name) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(Notifier { socket: None });
        };
        let shown = name.to_string_lossy().into_owned();
        let addr = parse_address(&shown).map_err(|source| NotifyError::Address {
            socket: shown.clone(),
            source,
        })?;
        let socket = UnixDatagram::unbound().map_err(NotifyError::Socket)?;
        Ok(Notifier {
            socket: Some((socket, addr)),
        })
    }

    /// Sends one state message such as "READY=1" or "STATUS=...".
    pub fn send(&self, state: &str) {
        let Some((socket, addr)) = &self.socket else {
            return;
        };
        if let Err(err) = socket.send_to_addr(state.as_bytes(), addr) {
            // Never fatal: the manager may be restarting; it will notice.
            tracing::warn!(error = %err, state, "sd_notify failed");
        }
    }

    /// The service is up: listeners bound, XDP attached.
    pub fn ready(&self, status: &str) {
        self.send(&format!(
            "READY=1\nMAINPID={}\nSTATUS={status}",
            std::process::id()
        ));
    }

    /// A reload begins (SIGHUP): `monotonic_usec` is CLOCK_MONOTONIC now,
    /// which Type=notify-reload (systemd 253+) requires to match the
    /// reload to its signal. `reloaded` ends it.
    pub fn reloading(&self, monotonic_usec: u64) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={monotonic_usec}\nSTATUS=reloading"
        ));
    }

    /// The reload is over, applied or refused (`status` says which); the
    /// service runs on either way.
    pub fn reloaded(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=draining");
    }
}

fn parse_address(name: &str) -> std::io::Result<SocketAddr> {
    if let Some(abstract_name) = name.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(abstract_name.as_bytes())
    } else if name.starts_with('/') {
        SocketAddr::from_pathname(name)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "expected an absolute path or an @abstract name",
        ))
    }
}

/// How often to send WATCHDOG=1: half of `$WATCHDOG_USEC` as sd_watchdog_enabled(3)
/// recommends, or `None` when the watchdog is off or meant for another
/// process (`$WATCHDOG_PID`).
pub fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.trim() != std::process::id().to_string()
    {
        return None;
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_abstract_addresses() {
        let path = parse_address("/run/systemd/notify").unwrap();
        assert_eq!(
            path.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        use std::os::linux::net::SocketAddrExt;
        let abs = parse_address("@edgegw/notify").unwrap();
        assert_eq!(abs.as_abstract_name(), Some(&b"edgegw/notify"[..]));
        assert!(parse_address("relative").is_err());
    }

    #[test]
    fn datagrams_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("edgegw-test-{}", std::process::id());
        let listener =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let notifier = Notifier {
            socket: Some((
                UnixDatagram::unbound().unwrap(),
                parse_address(&format!("@{name}")).unwrap(),
            )),
        };
        notifier.watchdog();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }
}
