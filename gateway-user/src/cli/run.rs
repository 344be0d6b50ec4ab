//! `edgegw run`: the daemon.
//!
//! Order matters for "nothing half-started": the config is validated, the
//! listeners are bound (an occupied port fails before XDP is touched), then
//! XDP is attached (or the pinned program adopted) and the DoS policy written
//! to its maps; on exit XDP stays pinned and enforcing, unless
//! `xdp.detach_on_exit` asks for a clean detach.
//! SIGHUP reloads the whole configuration file: a valid one is swapped in
//! atomically (proxy state, then the DoS policy into the pinned maps), an
//! invalid one is rejected whole and the old one stays. A managed gateway
//! (`[control_plane]`) starts from its backup or the control plane, then
//! applies the bundles it syncs through the same path (`apply`).

use std::{
    path::{Path, PathBuf},
    sync::{Arc, atomic::Ordering},
};

use anyhow::Context;
use tokio::{
    net::TcpListener,
    signal::unix::{Signal, SignalKind, signal},
};

use super::{apply::Live, xdp};
use crate::{
    admin::{self, AdminState, Metrics},
    config::Config,
    datapath::{PinDir, XdpMode},
    lifecycle::Lifecycle,
    proxy::{self, Gateway, Listeners, SharedGateway},
    state_registry::StateRegistry,
    sync,
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
    file: Config,
    mut lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    // A managed gateway's first bundle, before anything is bound.
    let managed = match &file.control_plane {
        Some(cp) => Some(sync::prepare(cp, &file).await?),
        None => None,
    };
    let config = match &managed {
        Some(m) => m.startup.config.clone(),
        None => file.clone(),
    };
    let backlog = config.limits.listen_backlog;
    let listeners = Listeners {
        plain: bind_client(config.listen, "gateway.listen", backlog)?,
        tls: match &config.tls {
            Some(t) => Some(bind_client(t.listen, "tls.listen", backlog)?),
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
    // Runtime state outlives each gateway: reloads carry it over.
    let fleet = managed.as_ref().map(|m| m.fleet.clone());
    // The Redis of cluster rate limits (the build starts its link): it
    // connects in the background, and a Redis that is down does not stop
    // the start (limits count locally).
    let redis = Arc::new(crate::redis_link::RedisSlot::default());
    let registry = Arc::new(StateRegistry::new(fleet.clone(), redis.clone()));
    let (gateway, state) = registry.build(|s| Gateway::build(&config, s))?;
    registry.commit(state);
    crate::memory::release_freed();
    // OTLP export: a collector that is down does not stop the start
    // (exports fail and are counted).
    let otel = match &config.telemetry.otlp {
        Some(o) => Some(crate::telemetry::Otel::start(o)?),
        None => None,
    };
    let metrics = Arc::new(Metrics::new(otel, config.analytics.enabled));
    if let Some(otel) = otel {
        let metrics = metrics.clone();
        otel.export_metrics(Box::new(move || metrics.otlp()));
    }
    let xdp_pins = (config.xdp_mode != XdpMode::Off).then(|| PinDir::new(&config.iface));
    // Off: no collector, roller, outbox or sender at all.
    let analytics = match &metrics.analytics {
        Some(collector) => Some(Arc::new(crate::analytics::Analytics::new(
            &config.analytics,
            collector.clone(),
            xdp_pins.clone(),
        )?)),
        None => None,
    };
    let admin_state = Arc::new(AdminState {
        analytics: analytics.clone(),
        metrics: metrics.clone(),
        ready: false.into(),
        xdp: (config.xdp_mode != XdpMode::Off).then(|| PinDir::new(&config.iface)),
        sync: managed.as_ref().map(|m| m.state.clone()),
        redis,
        pool_metrics: Some({
            let registry = registry.clone();
            Box::new(move |out: &mut String| {
                proxy::pool::render_metrics(&proxy::pool::views(&registry), out);
                crate::policy::cache::render_metrics(&registry, out);
                crate::policy::tokens::metrics::render(out);
            })
        }),
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
    // Handlers are installed before "ready": a signal sent right after it
    // must not meet the default action (which would kill the process).
    let hup = signal(SignalKind::hangup()).context("installing a SIGHUP handler")?;
    let term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let int = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    if let Err(err) = lifecycle.ready(&bound) {
        // Nothing half-started: leave XDP as an exit would (an adopted,
        // enforcing program stays pinned unless detach_on_exit).
        if let Some(attachment) = attachment {
            let _ = xdp::exit(attachment, config.detach_on_exit);
        }
        return Err(err);
    }
    if let Some(status) = lifecycle.status() {
        admin_state.redis.publish_to(status);
    }
    if let (Some(otel), Some(status)) = (otel, lifecycle.status()) {
        otel.publish_to(status);
    }
    if let Some(analytics) = &analytics {
        if let Some(status) = lifecycle.status() {
            analytics.publish_to(status);
        }
        tokio::spawn(analytics.clone().run());
    }
    if let Some(status) = lifecycle.status() {
        tokio::spawn(proxy::pool::publish(registry.clone(), status.clone()));
        tokio::spawn(crate::policy::cache::publish(registry.clone(), status));
    }
    if let Some(echo) = echo {
        tracing::info!(addr = %config.demo_backend.unwrap(), "demo echo backend listening");
        tokio::spawn(proxy::echo::serve(echo));
    }
    let pool_registry = registry.clone();
    let shared: SharedGateway = Arc::new(arc_swap::ArcSwap::from_pointee(gateway));
    let live = Arc::new(Live::new(
        shared.clone(),
        registry,
        metrics.clone(),
        attachment.as_ref().map(|a| a.pin_dir().clone()),
        lifecycle.status(),
        path.clone(),
        file,
        managed
            .as_ref()
            .map(|m| (m.startup.version, m.startup.text.clone())),
    ));
    tokio::spawn(reload_on_sighup(
        hup,
        path,
        overrides,
        live.clone(),
        lifecycle.notifier(),
    ));
    if let Some(m) = managed {
        if let Some(status) = lifecycle.status() {
            status.record_reload(m.startup.source, Ok(m.startup.text.as_bytes()));
            m.state.publish_to(status);
        }
        sync::spawn(Arc::new(sync::Syncer {
            cp: config.control_plane.clone().expect("managed"),
            client: m.client,
            state: m.state,
            fleet: m.fleet,
            applier: live,
            xdp: attachment.as_ref().map(|a| a.pin_dir().clone()),
            started: std::time::Instant::now(),
            heartbeat_now: Default::default(),
            poll_now: Default::default(),
            analytics: analytics.clone(),
            pools: Box::new(move || proxy::pool::views(&pool_registry)),
        }));
    }
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
    // The period in progress goes to the outbox: sent after the restart.
    if let Some(analytics) = &analytics {
        analytics.flush();
    }
    // Spans still queued go out (bounded by the export timeout).
    if let Some(otel) = otel {
        let _ = tokio::task::spawn_blocking(|| otel.shutdown()).await;
    }
    // Quota usage not yet reported is kept for the next start.
    if let Some(fleet) = fleet {
        fleet.save();
    }
    if let Some(attachment) = attachment {
        xdp::exit(attachment, config.detach_on_exit)?;
    }
    tracing::info!("edgegw stopped");
    Ok(())
}

async fn bind(addr: std::net::SocketAddr, field: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| bind_error(addr, field, e))
}

/// A client listener, with the configured listen backlog.
fn bind_client(
    addr: std::net::SocketAddr,
    field: &str,
    backlog: u32,
) -> anyhow::Result<TcpListener> {
    crate::proxy::bind(addr, backlog).map_err(|e| bind_error(addr, field, e))
}

fn bind_error(addr: std::net::SocketAddr, field: &str, e: std::io::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot listen on {addr} ({field}): {e}; choose a free address or stop what uses it"
    )
}

/// Reloads on every SIGHUP; requests in flight keep the configuration they
/// started with. The file is validated whole (with the current bundle of a
/// managed gateway on top) before anything changes. The service manager
/// hears RELOADING=1 before and READY=1 after, applied or refused.
async fn reload_on_sighup(
    mut hup: Signal,
    path: PathBuf,
    overrides: Overrides,
    live: Arc<Live>,
    notifier: Arc<crate::notify::Notifier>,
) {
    while hup.recv().await.is_some() {
        notifier.reloading(crate::clock::monotonic_ns() / 1_000);
        let outcome = if live.reload_file(overrides.load(&path)) {
            "reloaded"
        } else {
            "reload refused, previous configuration kept"
        };
        notifier.reloaded(&format!("serving; {outcome}: {}", path.display()));
    }
}

async fn shutdown_signal(mut term: Signal, mut int: Signal) {
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
