//! What an operator and the service manager see of the daemon's life:
//! logging, the status file, and sd_notify (READY=1 once listeners are bound
//! and XDP is attached, WATCHDOG=1 from the serving path, STOPPING=1 on
//! shutdown). `edgegw run` calls it at each step; it never decides anything
//! about serving itself.

use std::{
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    config::Config,
    datapath::XdpMode,
    logging::{self, LogControl},
    notify::{self, Notifier},
    status::{self, ConfigStatus, ListenerStatus, Status, StatusFile, SyncResult, XdpStatus},
    watchdog,
};

/// File in the runtime directory that `edgegw log-level` writes.
pub const LOG_LEVEL_FILE: &str = "log-level";

pub struct Lifecycle {
    log: Arc<LogControl>,
    notifier: Arc<Notifier>,
    runtime_dir: PathBuf,
    /// What `ready` publishes first.
    initial: Status,
    /// The published status file, from `ready` on.
    status: Option<Arc<StatusFile>>,
}

impl Lifecycle {
    /// The service manager's notification socket (a no-op without one).
    pub fn notifier(&self) -> Arc<Notifier> {
        self.notifier.clone()
    }

    /// Installs logging and reads the notification socket; called before
    /// anything is bound or attached.
    pub fn start(
        config_path: &Path,
        config: &Config,
        runtime_dir: &Path,
    ) -> anyhow::Result<Lifecycle> {
        let log = Arc::new(logging::init()?);
        let notifier = Arc::new(Notifier::from_env()?);
        let text = std::fs::read(config_path).unwrap_or_default();
        let now = crate::clock::now_secs();
        let initial = Status {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: now,
            state: "starting".into(),
            config: ConfigStatus {
                path: std::fs::canonicalize(config_path).unwrap_or_else(|_| config_path.into()),
                source: "file".into(),
                version: status::content_version(&text),
            },
            xdp: (config.xdp_mode != XdpMode::Off).then(|| XdpStatus {
                iface: config.iface.clone(),
                mode: config.xdp_mode.to_string(),
            }),
            listeners: vec![],
            last_sync: SyncResult {
                at: now,
                ok: true,
                message: format!("loaded {}", config_path.display()),
            },
            log_level: log.current(),
            control_plane: None,
            redis: None,
            analytics: None,
            telemetry: None,
            pools: Vec::new(),
            cache: None,
        };
        Ok(Lifecycle {
            log,
            notifier,
            runtime_dir: runtime_dir.into(),
            initial,
            status: None,
        })
    }

    /// Listeners are bound and XDP attached: publish the status file (the
    /// one step that can fail: an unwritable runtime directory), tell
    /// systemd, start the watchdog and the runtime log-level control.
    pub fn ready(&mut self, listeners: &[(&str, SocketAddr)]) -> anyhow::Result<()> {
        let mut first = self.initial.clone();
        first.state = "serving".into();
        first.listeners = listeners
            .iter()
            .map(|(name, addr)| ListenerStatus {
                name: (*name).into(),
                addr: addr.to_string(),
            })
            .collect();
        let status = Arc::new(StatusFile::create(&self.runtime_dir, first)?);
        self.status = Some(status.clone());
        let gateway = listeners
            .first()
            .map(|(_, addr)| *addr)
            .context("no listener to report")?;
        if let Some(interval) = notify::watchdog_interval() {
            tracing::info!(
                interval_ms = interval.as_millis() as u64,
                "systemd watchdog enabled"
            );
            watchdog::spawn(self.notifier.clone(), gateway, interval);
        }
        self.spawn_log_level_control(status)?;
        self.notifier.ready(&format!("serving on {gateway}"));
        Ok(())
    }

    /// The published status file (after `ready`), for the reload and sync
    /// paths to record their outcome with `StatusFile::record_reload`.
    pub fn status(&self) -> Option<Arc<StatusFile>> {
        self.status.clone()
    }

    /// Wraps the shutdown signal: tells systemd and the status file that the
    /// daemon is draining.
    pub fn on_shutdown(&self, signal: impl Future<Output = ()>) -> impl Future<Output = ()> {
        let notifier = self.notifier.clone();
        let status = self.status.clone();
        async move {
            signal.await;
            notifier.stopping();
            if let Some(status) = status {
                status.update(|s| s.state = "draining".into());
            }
        }
    }

    /// SIGUSR2: re-read `<runtime dir>/log-level` and swap the filter in.
    fn spawn_log_level_control(&self, status: Arc<StatusFile>) -> anyhow::Result<()> {
        let mut usr2 =
            signal(SignalKind::user_defined2()).context("installing a SIGUSR2 handler")?;
        let path = self.runtime_dir.join(LOG_LEVEL_FILE);
        let log = self.log.clone();
        tokio::spawn(async move {
            while usr2.recv().await.is_some() {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                // A request, not state: consumed so that nothing stays behind.
                let _ = std::fs::remove_file(&path);
                match log.set(&text) {
                    Ok(()) => {
                        tracing::warn!(level = %log.current(), "log level changed");
                        status.update(|s| s.log_level = log.current());
                    }
                    Err(err) => {
                        tracing::error!(file = %path.display(), error = %err, "log level unchanged")
                    }
                }
            }
        });
        Ok(())
    }
}
