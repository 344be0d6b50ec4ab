//! The live configuration of the proxy: everything a request needs, built
//! from a validated `Config` and swapped atomically on reload. A request
//! holds the `Arc<Gateway>` it started with, so in-flight requests finish
//! on the old configuration while new ones use the new.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{
    Router,
    access_log::AccessLog,
    backend::Backends,
    escalate::Escalator,
    tls::{self, TlsError},
};
use crate::{
    catalog::{Catalog, CatalogError},
    config::{CatalogSource, Config, Limits},
    datapath::{PinDir, XdpMode},
    policy::XdpState,
};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(
        "cannot open the access log {path}: {source}; check the directory exists and is writable"
    )]
    AccessLog {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

pub struct Gateway {
    pub router: Router,
    pub backends: Backends,
    pub limits: Limits,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub access_log: AccessLog,
    /// API management; `None` without a `[catalog]`: plain proxying.
    pub catalog: Option<Catalog>,
    /// Bans abusive clients in XDP; `None` without `[escalation]` or XDP.
    pub escalation: Option<Escalator>,
    /// XDP's allow/deny/ban state for policies; `None` without XDP.
    pub xdp_state: Option<XdpState>,
    /// The config it was built from (listener addresses cannot change live).
    pub config: Config,
}

impl Gateway {
    /// Builds every part or fails as a whole.
    pub fn build(config: &Config) -> Result<Gateway, GatewayError> {
        let tls = match &config.tls {
            Some(t) => Some(tls::server_config(t)?),
            None => None,
        };
        let access_log =
            AccessLog::open(&config.access_log).map_err(|source| GatewayError::AccessLog {
                path: format!("{:?}", config.access_log),
                source,
            })?;
        let catalog = match &config.catalog {
            Some(CatalogSource::File(path)) => Some(Catalog::load(path, Some(&config.apis))?),
            Some(CatalogSource::Inline(text)) => Some(Catalog::parse(
                "control plane configuration: catalog",
                text,
                Some(&config.apis),
            )?),
            None => None,
        };
        let extra = catalog.as_ref().map(Catalog::backends).unwrap_or_default();
        let backends = Backends::new(config.apis.iter().map(|a| &a.backend).chain(&extra))?;
        let escalation = match (&config.escalation, config.xdp_mode) {
            (Some(_), XdpMode::Off) => {
                tracing::warn!("[escalation] is ignored: XDP is off (xdp.mode or --xdp-mode)");
                None
            }
            (Some(e), _) => Some(Escalator::new(e.clone(), PinDir::new(&config.iface))),
            (None, _) => None,
        };
        let xdp_state =
            (config.xdp_mode != XdpMode::Off).then(|| XdpState::new(PinDir::new(&config.iface)));
        Ok(Gateway {
            escalation,
            xdp_state,
            catalog,
            router: Router::new(config.apis.clone()),
            backends,
            limits: config.limits.clone(),
            tls,
            access_log,
            config: config.clone(),
        })
    }
}

/// The current gateway, read per request and per connection.
pub type SharedGateway = Arc<ArcSwap<Gateway>>;
