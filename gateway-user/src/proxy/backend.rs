//! Pooled clients to the backends: one pool per distinct backend settings
//! (protocol, TLS roots, connect timeout), HTTP/1.1 or HTTP/2, plain or TLS.

use std::{collections::HashMap, time::Duration};

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};

use super::{RequestBody, tls};
use crate::config::{Backend, BackendProtocol};

pub type BackendClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// How long an idle pooled connection to a backend is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// The clients of every backend the configuration uses.
pub struct Backends {
    clients: HashMap<Backend, BackendClient>,
}

impl Backends {
    pub fn new<'a>(backends: impl Iterator<Item = &'a Backend>) -> Result<Backends, tls::TlsError> {
        let mut clients = HashMap::new();
        for b in backends {
            if !clients.contains_key(b) {
                clients.insert(b.clone(), client(b)?);
            }
        }
        Ok(Backends { clients })
    }

    pub fn client(&self, backend: &Backend) -> &BackendClient {
        self.clients
            .get(backend)
            .expect("every configured backend has a client")
    }
}

fn client(b: &Backend) -> Result<BackendClient, tls::TlsError> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(Some(b.connect_timeout));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls::client_config(b)?)
        .https_or_http();
    let connector = match b.protocol {
        BackendProtocol::Http1 => https.enable_http1().wrap_connector(http),
        BackendProtocol::Http2 => https.enable_http2().wrap_connector(http),
    };
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_idle_timeout(POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new());
    if b.protocol == BackendProtocol::Http2 {
        builder.http2_only(true);
    }
    Ok(builder.build(connector))
}
