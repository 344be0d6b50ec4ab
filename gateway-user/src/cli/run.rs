//! `edgegw run`: the daemon.
//!
//! Order matters for "nothing half-started": the config is validated, the
//! listeners are bound (an occupied port fails before XDP is touched), then
//! XDP is attached (or the pinned program adopted) and the DoS policy written
//! to its maps; on exit XDP stays pinned and enforcing, unless
//! `xdp.detach_on_exit` asks for a clean detach.

use std::path::Path;

use anyhow::Context;
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};

use super::xdp;
use crate::{
    config::Config,
    datapath::XdpMode,
    lifecycle::Lifecycle,
    proxy::{self, Proxy},
};

pub fn run(
    config_path: &Path,
    iface: Option<String>,
    mode: Option<XdpMode>,
    runtime_dir: &Path,
) -> anyhow::Result<()> {
    let mut config = Config::load(config_path)?;
    if let Some(iface) = iface {
        config.iface = iface;
    }
    if let Some(mode) = mode {
        config.xdp_mode = mode;
    }
    let lifecycle = Lifecycle::start(config_path, &config, runtime_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config, config_path.to_path_buf(), lifecycle))
}

async fn serve(
    config: Config,
    config_path: std::path::PathBuf,
    mut lifecycle: Lifecycle,
) -> anyhow::Result<()> {
    let listener = bind(config.listen, "gateway.listen").await?;
    let echo = match config.demo_backend {
        Some(addr) => Some(bind(addr, "demo_backend.listen").await?),
        None => None,
    };
    let attachment = match config.xdp_mode {
        XdpMode::Off => None,
        mode => Some(xdp::attach(&config, mode)?),
    };
    let mut listeners = vec![("gateway", listener.local_addr()?)];
    listeners.extend(config.demo_backend.map(|addr| ("demo_backend", addr)));
    if let Err(err) = lifecycle.ready(&listeners) {
        // Nothing half-started: leave XDP as an exit would (an adopted,
        // enforcing program stays pinned unless detach_on_exit).
        if let Some(attachment) = attachment {
            let _ = xdp::exit(attachment, config.detach_on_exit);
        }
        return Err(err);
    }
    if let Some(attachment) = &attachment {
        tokio::spawn(xdp::reload_dos_on_sighup(
            config_path,
            attachment.pin_dir().clone(),
            config.dos.clone(),
        ));
    }
    if let Some(echo) = echo {
        tracing::info!(addr = %config.demo_backend.unwrap(), "demo echo backend listening");
        tokio::spawn(proxy::echo::serve(echo));
    }
    tracing::info!(
        listen = %config.listen,
        iface = %config.iface,
        xdp_mode = %config.xdp_mode,
        apis = config.apis.len(),
        "edgegw ready"
    );
    let proxy = Proxy::new(&config);
    let shutdown = lifecycle.on_shutdown(shutdown_signal());
    proxy::serve(listener, proxy, shutdown, config.drain_timeout).await;
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

async fn shutdown_signal() {
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}
