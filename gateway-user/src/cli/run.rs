//! `edgegw run`: the daemon.
//!
//! Order matters for "nothing half-started": the config is validated, the
//! listeners are bound (an occupied port fails before XDP is touched), then
//! XDP is attached; on exit XDP is detached whatever happened while serving.
//! SIGHUP reloads the configuration file: a valid one is swapped in
//! atomically, an invalid one is rejected whole and the old one stays.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    sync::{Arc, atomic::Ordering},
};

use anyhow::Context;
use tokio::{
    net::TcpListener,
    signal::unix::{Signal, SignalKind, signal},
};

use crate::{
    admin::{self, AdminState, Metrics},
    config::Config,
    datapath::{self, PinDir, XdpMode},
    proxy::{self, Gateway, Listeners, SharedGateway},
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

pub fn run(config_path: &Path, iface: Option<String>, mode: Option<XdpMode>) -> anyhow::Result<()> {
    let overrides = Overrides { iface, mode };
    let config = overrides.load(config_path)?;
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config_path.to_path_buf(), overrides, config))
}

async fn serve(path: PathBuf, overrides: Overrides, config: Config) -> anyhow::Result<()> {
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
        mode => Some(datapath::attach(&config.iface, mode)?),
    };
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
        shared.clone(),
        metrics.clone(),
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
    let shutdown = async {
        shutdown_signal(term, int).await;
        admin_state.ready.store(false, Ordering::Release);
    };
    proxy::serve(listeners, shared, metrics, shutdown, config.drain_timeout).await;
    if let Some(attachment) = attachment {
        let iface = attachment.iface().to_string();
        attachment
            .detach()
            .with_context(|| format!("detaching XDP from {iface}"))?;
        tracing::info!(%iface, "XDP detached");
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

/// Reloads on every SIGHUP; requests in flight keep the configuration they
/// started with.
async fn reload_on_sighup(
    mut hup: Signal,
    path: PathBuf,
    overrides: Overrides,
    shared: SharedGateway,
    metrics: Arc<Metrics>,
) {
    while hup.recv().await.is_some() {
        let built = overrides
            .load(&path)
            .and_then(|c| Gateway::build(&c).map_err(Into::into));
        match built {
            Ok(gateway) => {
                let old = shared.load();
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
                let apis = gateway.config.apis.len();
                shared.store(Arc::new(gateway));
                metrics.reloaded(true);
                tracing::info!(config = %path.display(), apis, "configuration reloaded");
            }
            Err(err) => {
                metrics.reloaded(false);
                tracing::error!(
                    "configuration reload rejected, the previous configuration stays: {err:#}"
                );
            }
        }
    }
}

async fn shutdown_signal(mut term: Signal, mut int: Signal) {
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDGEGW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
