//! Pooled clients to the backends: one pool per distinct backend settings
//! (protocol, TLS roots, connect timeout), HTTP/1.1 or HTTP/2, plain or TLS,
//! and per thread: a proxy worker (see `workers`) reuses only the backend
//! connections it opened, which live on its own runtime.

use std::{collections::HashMap, time::Duration};

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use thread_local::ThreadLocal;

use super::{RequestBody, tls};
use crate::config::{Backend, BackendProtocol};

pub type BackendClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// How long an idle pooled connection to a backend is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// One backend's connector (TLS settings built once) and its per-thread
/// clients.
struct Pools {
    connector: HttpsConnector<HttpConnector>,
    protocol: BackendProtocol,
    clients: ThreadLocal<BackendClient>,
}

/// The clients of every backend the configuration uses.
pub struct Backends {
    pools: HashMap<Backend, Pools>,
}

impl Backends {
    pub fn new<'a>(backends: impl Iterator<Item = &'a Backend>) -> Result<Backends, tls::TlsError> {
        let mut pools = HashMap::new();
        for b in backends {
            if !pools.contains_key(b) {
                let p = Pools {
                    connector: connector(b)?,
                    protocol: b.protocol,
                    clients: ThreadLocal::new(),
                };
                pools.insert(b.clone(), p);
            }
        }
        Ok(Backends { pools })
    }

    /// This thread's client for `backend`.
    pub fn client(&self, backend: &Backend) -> &BackendClient {
        let p = self
            .pools
            .get(backend)
            .expect("every configured backend has a client");
        p.clients.get_or(|| client(&p.connector, p.protocol))
    }
}

fn connector(b: &Backend) -> Result<HttpsConnector<HttpConnector>, tls::TlsError> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(Some(b.connect_timeout));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls::client_config(b)?)
        .https_or_http();
    Ok(match b.protocol {
        BackendProtocol::Http1 => https.enable_http1().wrap_connector(http),
        BackendProtocol::Http2 => https.enable_http2().wrap_connector(http),
    })
}

fn client(connector: &HttpsConnector<HttpConnector>, protocol: BackendProtocol) -> BackendClient {
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_idle_timeout(POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new());
    if protocol == BackendProtocol::Http2 {
        builder.http2_only(true);
    }
    builder.build(connector.clone())
}
