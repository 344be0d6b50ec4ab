//! `edgegw reload`: sends SIGHUP to the running daemon and waits until its
//! status file records the outcome, so that `systemctl reload edgegw`
//! (the unit's ExecReload) returns when the new configuration is applied,
//! and fails with the daemon's reason when it was refused. Works with any
//! systemd (Type=notify-reload needs 253 or newer).

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::bail;

use crate::{clock::now_secs, status};

/// How long the daemon gets to apply or refuse the file.
const TIMEOUT: Duration = Duration::from_secs(60);

pub fn reload(runtime_dir: &Path) -> anyhow::Result<()> {
    let daemon = status::read(runtime_dir)?;
    // Outcomes are stamped in whole seconds: signal in a later second than
    // the last recorded one, so that any record at or after it is ours.
    let sent_at = loop {
        let now = now_secs();
        if now > daemon.last_sync.at {
            break now;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    status::signal(daemon.pid, nix::sys::signal::Signal::SIGHUP as i32).map_err(|e| {
        anyhow::anyhow!(
            "cannot signal edgegw (pid {}): {e}; run as the daemon's user or root",
            daemon.pid
        )
    })?;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let last = status::read(runtime_dir)?.last_sync;
        if last.at >= sent_at {
            if last.ok {
                println!("edgegw (pid {}): {}", daemon.pid, last.message);
                return Ok(());
            }
            bail!(
                "reload refused, edgegw (pid {}) keeps its running configuration: {}",
                daemon.pid,
                last.message
            );
        }
        if Instant::now() > deadline {
            bail!(
                "edgegw (pid {}) recorded no reload within {} s of SIGHUP; see its log",
                daemon.pid,
                TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
