//! The live configuration of the proxy: everything a request needs, built
//! from a validated `Config` and swapped atomically on reload. A request
//! holds the `Arc<Gateway>` it started with, so in-flight requests finish
//! on the old configuration while new ones use the new.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{
    Router,
    access_log::AccessLog,
    backend::{Backends, BackendsError},
    escalate::Escalator,
};
use crate::{
    catalog::{Catalog, CatalogError},
    config::{CatalogSource, Config, Limits},
    datapath::{PinDir, XdpMode},
    policy::XdpState,
    state_registry::{Kind as StateKind, Staging},
    tls::{self, TlsError},
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
    #[error(transparent)]
    Pool(#[from] super::pool::PoolError),
    #[error(
        "policy at {place}: scope: cluster needs a Redis to count in, and neither this node's config nor the control plane's bundle has one; add [redis] url = \"redis://HOST:PORT\" to the node config (or PUT /v1/redis on the control plane), or use scope: local"
    )]
    ClusterLimitWithoutRedis { place: String },
    #[error(
        "policy at {place}: caching_type: external needs a Redis to cache in, and neither this node's config nor the control plane's bundle has one; add [redis] url = \"redis://HOST:PORT\" to the node config (or PUT /v1/redis on the control plane), or use caching_type: internal or prefer-external"
    )]
    CacheWithoutRedis { place: String },
    #[error(
        "policy at {place}: authentication-managed-identity needs the gateway's own identity, and this node's config has none; add [identity] with token_url, client_id and client_secret_file (or federated_token_file), or remove the policy"
    )]
    ManagedIdentityWithoutIdentity { place: String },
    #[error(transparent)]
    Redis(#[from] crate::redis_link::RedisSetupError),
}

pub struct Gateway {
    pub router: Router,
    pub backends: Backends,
    pub limits: Limits,
    pub tls: Option<Arc<tls::ServerTls>>,
    pub access_log: AccessLog,
    /// API management; `None` without a `[catalog]`: plain proxying.
    pub catalog: Option<Catalog>,
    /// Bans abusive clients in XDP; `None` without `[escalation]` or XDP.
    pub escalation: Option<Arc<Escalator>>,
    /// XDP's allow/deny/ban state for policies; `None` without XDP.
    pub xdp_state: Option<XdpState>,
    /// Query parameters the access log and spans redact.
    pub redact_query: Vec<String>,
    /// The config it was built from (listener addresses cannot change live).
    pub config: Config,
}

impl Gateway {
    /// Builds every part or fails as a whole, taking its runtime state from
    /// `staging` (the running state carried over, or fresh).
    pub fn build(config: &Config, staging: &mut Staging) -> Result<Gateway, GatewayError> {
        staging.use_redis(config.redis.as_ref())?;
        staging.set_cache_memory_bytes(config.limits.cache_memory_bytes);
        staging.use_identity(config.identity.as_ref());
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
            Some(CatalogSource::File(path)) => Some(Catalog::load(
                path,
                Some(&config.apis),
                Some(&config.backends),
                staging,
            )?),
            Some(CatalogSource::Bundled(model)) => Some(Catalog::build(model.clone(), staging)),
            None => None,
        };
        if let Some(place) = staging.first_without_identity() {
            return Err(GatewayError::ManagedIdentityWithoutIdentity {
                place: place.to_string(),
            });
        }
        if let Some(place) = staging.first_cache_without_redis() {
            return Err(GatewayError::CacheWithoutRedis {
                place: place.to_string(),
            });
        }
        if let Some(place) = staging.first_without_redis() {
            return Err(GatewayError::ClusterLimitWithoutRedis {
                place: place.to_string(),
            });
        }
        let mut extra = catalog.as_ref().map(Catalog::backends).unwrap_or_default();
        // Each backend a request may go to, with each certificate an
        // `authentication-certificate` may present to it.
        let identities = catalog
            .as_ref()
            .map(Catalog::client_identities)
            .unwrap_or_default();
        if !identities.is_empty() {
            let bases: Vec<crate::config::Backend> = config
                .apis
                .iter()
                .map(|a| a.backend.clone())
                .chain(extra.iter().cloned())
                .collect();
            for id in identities {
                for b in &bases {
                    extra.push(crate::config::Backend {
                        client_identity: Some(id.clone()),
                        ..b.clone()
                    });
                }
            }
        }
        let backends = Backends::new(
            config.apis.iter().map(|a| &a.backend).chain(&extra),
            staging,
        )
        .map_err(|e| match e {
            BackendsError::Tls(e) => GatewayError::Tls(e),
            BackendsError::Pool(e) => GatewayError::Pool(e),
        })?;
        let escalation = match (&config.escalation, config.xdp_mode) {
            (Some(_), XdpMode::Off) => {
                tracing::warn!("[escalation] is ignored: XDP is off (xdp.mode or --xdp-mode)");
                None
            }
            (Some(e), _) => Some(staging.take(
                StateKind::Escalation,
                format!("{e:?}|{}", config.iface),
                || Escalator::new(e.clone(), PinDir::new(&config.iface)),
            )),
            (None, _) => None,
        };
        let xdp_state =
            (config.xdp_mode != XdpMode::Off).then(|| XdpState::new(PinDir::new(&config.iface)));
        let mut redact_query = vec![super::redact::SUBSCRIPTION_KEY.to_string()];
        redact_query.extend(config.telemetry.redact_query.iter().cloned());
        redact_query.extend(catalog.iter().flat_map(Catalog::key_query_names));
        redact_query.sort();
        redact_query.dedup();
        Ok(Gateway {
            redact_query,
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

/// The current gateway for one request, held until the request ends.
///
/// Cloning the one `Arc<Gateway>` for every request would make both
/// worker threads increment and decrement the same counter, moving its
/// cache line between cores twice per request. Each thread instead keeps
/// its own handle to the current gateway and hands out clones of that; it
/// takes a new one when a reload swapped the gateway. A thread that has
/// seen no request since a reload keeps the old gateway until its next one.
pub fn current(shared: &SharedGateway) -> Arc<ThreadGateway> {
    use std::cell::RefCell;
    /// (the swap, the gateway it held, this thread's handle to it)
    type Snapshot = (*const ArcSwap<Gateway>, *const Gateway, Arc<ThreadGateway>);
    thread_local! {
        static SNAPSHOT: RefCell<Option<Snapshot>> = const { RefCell::new(None) };
    }
    let swap: *const ArcSwap<Gateway> = Arc::as_ptr(shared);
    let now = shared.load();
    SNAPSHOT.with_borrow_mut(|snapshot| match snapshot {
        Some((s, g, held)) if *s == swap && *g == Arc::as_ptr(&now) => held.clone(),
        _ => {
            let held = Arc::new(ThreadGateway(arc_swap::Guard::into_inner(now)));
            *snapshot = Some((swap, Arc::as_ptr(&held.0), held.clone()));
            held
        }
    })
}

/// One thread's handle to a gateway (see `current`).
pub struct ThreadGateway(Arc<Gateway>);

impl std::ops::Deref for ThreadGateway {
    type Target = Gateway;

    fn deref(&self) -> &Gateway {
        &self.0
    }
}
