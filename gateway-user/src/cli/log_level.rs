//! `edgegw log-level LEVEL`: changes the running daemon's log filter without a
//! restart. Writes `<runtime dir>/log-level`, sends SIGUSR2, and waits until
//! the daemon's status file shows the new level.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::bail;

use crate::{lifecycle::LOG_LEVEL_FILE, logging, status};

pub fn set(runtime_dir: &Path, level: &str) -> anyhow::Result<()> {
    logging::parse_filter(level)?;
    let level = level.trim();
    let daemon = status::read(runtime_dir)?;
    let path = runtime_dir.join(LOG_LEVEL_FILE);
    let tmp = runtime_dir.join(format!(".{LOG_LEVEL_FILE}.{}", std::process::id()));
    std::fs::write(&tmp, level)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot write {}: {e}; run as the daemon's user or root",
                path.display()
            )
        })?;
    status::signal(daemon.pid, nix::sys::signal::Signal::SIGUSR2 as i32).map_err(|e| {
        anyhow::anyhow!(
            "cannot signal edgegw (pid {}): {e}; run as the daemon's user or root",
            daemon.pid
        )
    })?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if status::read(runtime_dir)?.log_level == level {
            println!("log level of edgegw (pid {}) is now {level}", daemon.pid);
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "edgegw (pid {}) did not apply log level {level} within 5 s; see its log",
                daemon.pid
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
