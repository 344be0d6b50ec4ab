//! `edgegw run`: the daemon.
//!
//! Order matters for "nothing half-started": the config is validated, the
//! listeners are bound (an occupied port fails before XDP is touched), then
//! XDP is attached (or the pinned program adopted) and the DoS policy written
//! to its maps; on exit XDP stays pinned and enforcing, unless
//! `xdp.detach_on_exit` asks for a clean detach.
//! SIGHUP reloads the whole configuration file: a valid one is swapped in
//! atomically (proxy state, then the DoS policy into the pinned maps), an
//! invalid one is rejected whole and the old one stays.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, atomic::Ordering},
};

use anyhow::Context;
use tokio::{
    net::TcpListener,
    signal::unix::{Signal, SignalKind, signal},
};

use super::xdp;
use crate::{
    admin::{self, AdminState, Metrics},
    config::Config,
    datapath::{PinDir, XdpMode},
    lifecycle::Lifecycle,
    proxy::{self, Gateway, Listeners, SharedGateway},
    status::StatusFile,
};

/// Command-line settings that override the file, on start and on reload.
#[derive(Clone)]
struct Overrides {
    iface: Option<String>,
    mode: Option<XdpMode>,
}

impl Overrides {
    fn load(&self, path: &Path) -> anyhow::Result<Config> {
        let mut config = Config::load(path)?;
        if let Some(iface) = &self.iface {
            config.iface = iface.clone();
        }
        if let Some(mode) = self.mode {
            config.xdp_mode = mode;
        }
        Ok(config)
    }
}

pub fn run(
    config_path: &Path,
    iface: Option<String>,
    mode: Option<XdpMode>,
    runtime_dir: &Path,
) -> anyhow::Result<()> {
    let overrides = Overrides { iface, mode };
    let config = overrides.load(config_path)?;
    let lifecycle = Lifecycle::start(config_path, &config, runtime_dir)?;
    // Accept, admin, signals and reloads; connections are served by the
    // proxy's own worker threads (`proxy::serve`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(
        config_path.to_path_buf(),
        overrides,
        config,
        lifecycle,
    ))
}

async fn serve(
    path: PathBuf,
    overrides: Overrides,
    config: Config,
    mut lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    let listeners = Listeners {
        plain: bind(config.listen, "gateway.listen").await?,
        tls: match &config.tls {
            Some(t) => Some(bind(t.listen, "tls.listen").await?),
            None => None,
        },
    };
    let admin_listener = match config.admin {
        Some(addr) => Some(bind(addr, "admin.listen").await?),
        None => None,
    };
    let echo = match config.demo_backend {
        Some(addr) => Some(bind(addr, "demo_backend.listen").await?),
        None => None,
    };
    let gateway = Gateway::build(&config)?;
    let metrics = Arc::new(Metrics::default());
    let admin_state = Arc::new(AdminState {
        metrics: metrics.clone(),
        ready: false.into(),
        xdp: (config.xdp_mode != XdpMode::Off).then(|| PinDir::new(&config.iface)),
    });
    if let Some(listener) = admin_listener {
        tracing::info!(addr = %config.admin.unwrap(), "admin listener (/healthz, /readyz, /metrics)");
        tokio::spawn(admin::serve(listener, admin_state.clone()));
    }
    let attachment = match config.xdp_mode {
        XdpMode::Off => None,
        mode => Some(xdp::attach(&config, mode)?),
    };
    let mut bound = vec![("gateway", listeners.plain.local_addr()?)];
    if let Some(tls) = &listeners.tls {
        bound.push(("tls", tls.local_addr()?));
    }
    bound.extend(config.admin.map(|addr| ("admin", addr)));
    bound.extend(config.demo_backend.map(|addr| ("demo_backend", addr)));
    if let Err(err) = lifecycle.ready(&bound) {
        // Nothing half-started: leave XDP as an exit would (an adopted,
        // enforcing program stays pinned unless detach_on_exit).
        if let Some(attachment) = attachment {
            let _ = xdp::exit(attachment, config.detach_on_exit);
        }
        return Err(err);
    }
    if let Some(echo) = echo {
        tracing::info!(addr = %config.demo_backend.unwrap(), "demo echo backend listening");
        tokio::spawn(proxy::echo::serve(echo));
    }
    let shared: SharedGateway = Arc::new(arc_swap::ArcSwap::from_pointee(gateway));
    // Handlers are installed before "ready": a signal sent right after it
    // must not meet the default action (which would kill the process).
    let hup = signal(SignalKind::hangup()).context("installing a SIGHUP handler")?;
    let term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let int = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    tokio::spawn(reload_on_sighup(
        hup,
        path,
        overrides,
        Reloadable {
            gateway: shared.clone(),
            metrics: metrics.clone(),
            xdp: attachment.as_ref().map(|a| a.pin_dir().clone()),
            dos: config.dos.clone(),
            status: lifecycle.status(),
        },
    ));
    admin_state.ready.store(true, Ordering::Release);
    tracing::info!(
        listen = %config.listen,
        tls = ?config.tls.as_ref().map(|t| t.listen),
        iface = %config.iface,
        xdp_mode = %config.xdp_mode,
        apis = config.apis.len(),
        "edgegw ready"
    );
    let shutdown = lifecycle.on_shutdown(async {
        shutdown_signal(term, int).await;
        admin_state.ready.store(false, Ordering::Release);
    });
    proxy::serve(listeners, shared, metrics, shutdown, config.drain_timeout).await;
    if let Some(attachment) = attachment {
        xdp::exit(attachment, config.detach_on_exit)?;
    }
    tracing::info!("edgegw stopped");
    Ok(())
}

async fn bind(addr: std::net::SocketAddr, field: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {addr} ({field}): {e}; choose a free address or stop what uses it"
        )
    })
}

/// What a SIGHUP reload replaces.
struct Reloadable {
    gateway: SharedGateway,
    metrics: Arc<Metrics>,
    /// Pin directory of the attached program, whose maps take the DoS policy.
    xdp: Option<PinDir>,
    /// The DoS policy the maps hold now.
    dos: Option<crate::config::DosPolicy>,
    status: Option<Arc<StatusFile>>,
}

/// Reloads on every SIGHUP; requests in flight keep the configuration they
/// started with. The file is validated whole before anything changes.
async fn reload_on_sighup(
    mut hup: Signal,
    path: PathBuf,
    overrides: Overrides,
    mut live: Reloadable,
) {
    while hup.recv().await.is_some() {
        let built = overrides
            .load(&path)
            .and_then(|c| Gateway::build(&c).map_err(Into::into));
        let gateway = match built {
            Ok(gateway) => gateway,
            Err(err) => {
                live.metrics.reloaded(false);
                if let Some(status) = &live.status {
                    status.record_reload("file", Err(format!("{err:#}")));
                }
                tracing::error!(
                    "configuration reload rejected, the previous configuration stays: {err:#}"
                );
                continue;
            }
        };
        let old = live.gateway.load();
        for (what, before, after) in [
            (
                "gateway.listen",
                Some(old.config.listen),
                Some(gateway.config.listen),
            ),
            (
                "tls.listen",
                old.config.tls.as_ref().map(|t| t.listen),
                gateway.config.tls.as_ref().map(|t| t.listen),
            ),
            ("admin.listen", old.config.admin, gateway.config.admin),
        ] {
            if before != after {
                tracing::warn!(
                    "{what} changed from {before:?} to {after:?}: listeners change only on restart"
                );
            }
        }
        let dos = gateway.config.dos.clone();
        let apis = gateway.config.apis.len();
        live.gateway.store(Arc::new(gateway));
        if let Some(dir) = &live.xdp {
            xdp::apply_dos(dir, &mut live.dos, dos);
        }
        live.metrics.reloaded(true);
        if let Some(status) = &live.status {
            let text = std::fs::read(&path).map_err(|e| e.to_string());
            status.record_reload("file", text.as_deref().map_err(Clone::clone));
        }
        tracing::info!(config = %path.display(), apis, "configuration reloaded");
    }
}

async fn shutdown_signal(mut term: Signal, mut int: Signal) {
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
