//! Sending requests to backends. HTTP/1.1 backends (plain or TLS) use the
//! lean client in `h1` (per-thread pools, no connection task); HTTP/2
//! backends, and upgrades, use hyper-util's pooled client. Both keep their
//! connections per thread: a proxy worker (see `workers`) reuses only the
//! backend connections it opened, which live on its own runtime.

use std::{collections::HashMap, sync::Arc, time::Duration};

use http_body_util::BodyExt;
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version, upgrade::OnUpgrade};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use thread_local::ThreadLocal;

use super::{BoxError, ProxyBody, RequestBody, h1, tls};
use crate::config::{Backend, BackendProtocol};

type PooledClient = Client<HttpsConnector<HttpConnector>, RequestBody>;

/// How long an idle pooled connection to a backend is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// Why a backend exchange failed; the proxy answers each differently.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot connect to the backend: {0}")]
    Connect(#[source] BoxError),
    #[error("the request body is over the limit")]
    BodyTooLarge,
    #[error("the backend exchange failed: {0}")]
    Failed(#[source] BoxError),
}

/// A request head on its way to a backend; `target` is the path and query.
#[derive(Clone)]
pub struct Outgoing {
    pub method: Method,
    pub target: String,
    pub headers: HeaderMap,
}

/// A backend's answer; `upgrade` is set when it switched protocols.
pub struct Answer {
    pub response: Response<ProxyBody>,
    pub upgrade: Option<OnUpgrade>,
}

/// One backend's client.
enum Pools {
    Lean(Arc<h1::Pool>),
    Pooled(Box<Pooled>),
}

/// hyper-util clients, one per thread, sharing TLS settings built once.
struct Pooled {
    connector: HttpsConnector<HttpConnector>,
    protocol: BackendProtocol,
    clients: ThreadLocal<PooledClient>,
}

/// The clients of every backend the configuration uses.
pub struct Backends {
    pools: HashMap<Backend, Pools>,
    /// Upgrades to plain HTTP/1.1 backends: they need hyper's connection
    /// handling.
    upgrades: HashMap<Backend, Pools>,
}

impl Backends {
    pub fn new<'a>(backends: impl Iterator<Item = &'a Backend>) -> Result<Backends, tls::TlsError> {
        let mut pools = HashMap::new();
        let mut upgrades = HashMap::new();
        for b in backends {
            if pools.contains_key(b) {
                continue;
            }
            let lean = b.protocol == BackendProtocol::Http1;
            let p = if lean {
                let tls = (b.scheme == "https").then(|| lean_tls(b)).transpose()?;
                let pool = h1::Pool::new(&b.authority, tls, b.connect_timeout).map_err(|why| {
                    tls::TlsError::ServerName(format!("backend {}: {why}", b.authority))
                })?;
                Pools::Lean(Arc::new(pool))
            } else {
                pooled(b)?
            };
            pools.insert(b.clone(), p);
            if lean {
                upgrades.insert(b.clone(), pooled(b)?);
            }
        }
        Ok(Backends { pools, upgrades })
    }

    /// Sends a request to `backend`; with `upgrade`, the backend may
    /// switch protocols. A lean client's response body fails when the
    /// backend falls silent for `read_timeout`.
    pub async fn send(
        &self,
        backend: &Backend,
        out: Outgoing,
        body: RequestBody,
        upgrade: bool,
        read_timeout: Duration,
    ) -> Result<Answer, BackendError> {
        let pools = upgrade
            .then(|| self.upgrades.get(backend))
            .flatten()
            .or_else(|| self.pools.get(backend))
            .expect("every configured backend has a client");
        match pools {
            Pools::Lean(pool) => {
                let response = h1::send(
                    pool,
                    &out.method,
                    &out.target,
                    &out.headers,
                    body,
                    read_timeout,
                )
                .await?;
                Ok(Answer {
                    response: response.map(BodyExt::boxed),
                    upgrade: None,
                })
            }
            Pools::Pooled(p) => {
                let client = p.clients.get_or(|| client(&p.connector, p.protocol));
                let uri: Uri = format!("{}://{}{}", backend.scheme, backend.authority, out.target)
                    .parse()
                    .map_err(|e: hyper::http::uri::InvalidUri| BackendError::Failed(e.into()))?;
                let mut req = Request::new(body);
                *req.method_mut() = out.method;
                *req.uri_mut() = uri;
                *req.version_mut() = match p.protocol {
                    BackendProtocol::Http1 => Version::HTTP_11,
                    BackendProtocol::Http2 => Version::HTTP_2,
                };
                *req.headers_mut() = out.headers;
                let mut response = client.request(req).await.map_err(pooled_error)?;
                let upgrade = (upgrade && response.status() == StatusCode::SWITCHING_PROTOCOLS)
                    .then(|| hyper::upgrade::on(&mut response));
                Ok(Answer {
                    response: response.map(|b| b.map_err(BoxError::from).boxed()),
                    upgrade,
                })
            }
        }
    }
}

/// The backend's TLS settings, offering HTTP/1.1 only.
fn lean_tls(b: &Backend) -> Result<Arc<rustls::ClientConfig>, tls::TlsError> {
    let mut config = tls::client_config(b)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn pooled_error(err: hyper_util::client::legacy::Error) -> BackendError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return BackendError::BodyTooLarge;
        }
        source = e.source();
    }
    if err.is_connect() {
        BackendError::Connect(err.into())
    } else {
        BackendError::Failed(err.into())
    }
}

fn pooled(b: &Backend) -> Result<Pools, tls::TlsError> {
    Ok(Pools::Pooled(Box::new(Pooled {
        connector: connector(b)?,
        protocol: b.protocol,
        clients: ThreadLocal::new(),
    })))
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

fn client(connector: &HttpsConnector<HttpConnector>, protocol: BackendProtocol) -> PooledClient {
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
