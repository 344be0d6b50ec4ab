//! Sending requests to backends. HTTP/1.1 backends (plain or TLS) use the
//! lean client in `h1_client` (per-thread pools, no connection task); HTTP/2
//! backends, and upgrades, use hyper-util's pooled client. Both keep their
//! connections per thread: a proxy worker (see `workers`) reuses only the
//! backend connections it opened, which live on its own runtime.

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use http_body_util::BodyExt;
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version, upgrade::OnUpgrade};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use thread_local::ThreadLocal;

use super::backend_error::BackendError;
use super::{
    BoxError, ProxyBody, RequestBody, h1_client,
    h1_server::MalformedBody,
    headers::Added,
    pool::{PoolError, PoolState},
    resolve::Resolve,
};
use crate::{
    config::{Backend, BackendProtocol, pool::PoolSpec},
    state_registry::{Kind as StateKind, Staging},
    tls,
};

type Connector = HttpsConnector<HttpConnector<Resolve>>;
type PooledClient = Client<Connector, RequestBody>;

/// How long an idle pooled connection to a backend is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// A request head on its way to a backend; `target` is the path and query.
#[derive(Clone)]
pub struct Outgoing {
    pub method: Method,
    pub target: String,
    /// The client's headers, hop-by-hop ones removed.
    pub headers: HeaderMap,
    /// The ones the proxy sets.
    pub added: Added,
}

/// A backend's answer; `upgrade` is set when it switched protocols.
pub struct Answer {
    pub response: Response<ProxyBody>,
    pub upgrade: Option<OnUpgrade>,
}

/// What a backend's connections depend on, the identity its pools are
/// kept under across reloads: a change of base path or response timeout
/// keeps them; a change of address, protocol, connect timeout or CA (the
/// file's name or contents) does not.
fn pool_identity(b: &Backend) -> String {
    use sha2::Digest;
    let ca = b.ca_file.as_ref().map(|path| {
        let contents = std::fs::read(path).unwrap_or_default();
        let sum = gateway_model::keys::to_hex(&sha2::Sha256::digest(contents));
        format!("{} sha256:{sum}", path.display())
    });
    // A client certificate's files by contents too (renewed in place).
    let client = b.client_identity.as_ref().map(|id| {
        let cert = match &id.cert {
            crate::config::CertSource::File(p) => std::fs::read(p).unwrap_or_default(),
            crate::config::CertSource::Der(der) => der.to_vec(),
        };
        let key = std::fs::read(&id.key).unwrap_or_default();
        let sum = sha2::Sha256::new()
            .chain_update(cert)
            .chain_update(key)
            .finalize();
        format!("{:?} sha256:{}", id.key, gateway_model::keys::to_hex(&sum))
    });
    format!(
        "{}://{} {:?} connect={:?} ca={ca:?} client={client:?}",
        b.scheme, b.authority, b.protocol, b.connect_timeout
    )
}

/// One backend's clients: hyper-util's pooled client (HTTP/2, and
/// upgrades), and for HTTP/1.1 the lean client that serves everything else.
/// Kept across reloads with their pools (`state_registry`).
pub(crate) struct Clients {
    lean: Option<h1_client::Shared>,
    /// TLS settings built once, for every thread's client.
    connector: Connector,
    protocol: BackendProtocol,
    pooled: ThreadLocal<PooledClient>,
}

/// How one configured backend is reached: its clients, or a pool of
/// members (`pool`).
enum Target {
    Single(Arc<Clients>),
    Pool(Arc<PoolState>),
}

/// The clients of every backend the configuration uses.
pub struct Backends {
    clients: Vec<(Backend, Target)>,
    by_value: HashMap<Backend, usize, foldhash::fast::RandomState>,
    /// Looked up on every request: the requests name the backends of the
    /// configuration this was built from, so their addresses find them
    /// without hashing the whole description (checked by value on a hit).
    by_address: HashMap<usize, usize, foldhash::fast::RandomState>,
}

/// Why the backends of a configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BackendsError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl Backends {
    pub fn new<'a>(
        backends: impl Iterator<Item = &'a Backend>,
        staging: &mut Staging,
    ) -> Result<Backends, BackendsError> {
        let mut this = Backends {
            clients: Vec::new(),
            by_value: HashMap::default(),
            by_address: HashMap::default(),
        };
        for b in backends {
            let i = match this.by_value.get(b) {
                Some(&i) => i,
                None => {
                    let target = match &b.pool {
                        None => Target::Single(staging.try_take(
                            StateKind::Pool,
                            pool_identity(b),
                            || Clients::new(b, None),
                        )?),
                        Some(spec) => Target::Pool(pool_state(b, spec, staging)?),
                    };
                    this.clients.push((b.clone(), target));
                    this.by_value.insert(b.clone(), this.clients.len() - 1);
                    this.clients.len() - 1
                }
            };
            this.by_address.insert(address(b), i);
        }
        Ok(this)
    }

    fn target(&self, backend: &Backend) -> &Target {
        let i = self
            .by_address
            .get(&address(backend))
            .copied()
            .filter(|&i| self.clients[i].0 == *backend)
            .or_else(|| self.by_value.get(backend).copied())
            .expect("every configured backend has a client");
        &self.clients[i].1
    }

    /// Sends a request to `backend` (a member of it, for a pool); with
    /// `upgrade`, the backend may switch protocols. A lean client's
    /// response body fails when the backend falls silent for `read_timeout`.
    pub async fn send(
        &self,
        backend: &Backend,
        out: Outgoing,
        body: RequestBody,
        upgrade: bool,
        read_timeout: Duration,
    ) -> Result<Answer, BackendError> {
        let answer = match self.target(backend) {
            Target::Single(c) => send_on(c, backend, &out, body, upgrade, read_timeout).await,
            Target::Pool(pool) => pool.send(&out, body, upgrade, read_timeout).await,
        };
        // The head is written: the map's memory serves a later request.
        super::spare::give_back_map(out.headers);
        answer
    }
}

/// A pool's state, kept under its settings; its members' clients are its
/// own (one per address of each member's host name, see `pool`).
fn pool_state(
    b: &Backend,
    spec: &Arc<PoolSpec>,
    staging: &mut Staging,
) -> Result<Arc<PoolState>, BackendsError> {
    let tls = (b.scheme == "https")
        .then(|| {
            let mut config = tls::client_config(b)?;
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok::<_, tls::TlsError>(Arc::new(config))
        })
        .transpose()?;
    let identity = PoolState::identity(&pool_identity(b), spec);
    Ok(staging.try_take(StateKind::BackendPool, identity, || {
        PoolState::new(spec, b, tls)
    })?)
}

/// Sends a request with one backend's clients. The lean client only
/// reads `out`, so a pool can send it again without a copy; hyper's
/// client gets a copy.
pub(crate) async fn send_on(
    c: &Clients,
    backend: &Backend,
    out: &Outgoing,
    body: RequestBody,
    upgrade: bool,
    read_timeout: Duration,
) -> Result<Answer, BackendError> {
    if let Some(lean) = c.lean.as_ref().filter(|_| !upgrade) {
        let response = h1_client::send(
            lean.local(),
            &out.method,
            &out.target,
            &out.headers,
            &out.added,
            body,
            read_timeout,
        )
        .await?;
        return Ok(Answer {
            response: response.map(BodyExt::boxed),
            upgrade: None,
        });
    }
    let out = out.clone();
    let client = c.pooled.get_or(|| client(&c.connector, c.protocol));
    let uri: Uri = format!("{}://{}{}", backend.scheme, backend.authority, out.target)
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| BackendError::Failed(e.into()))?;
    let mut req = Request::new(body);
    *req.method_mut() = out.method;
    *req.uri_mut() = uri;
    *req.version_mut() = match c.protocol {
        BackendProtocol::Http1 => Version::HTTP_11,
        BackendProtocol::Http2 => Version::HTTP_2,
    };
    let mut headers = out.headers;
    // The URI names the backend; hyper answers `Expect: 100-continue`
    // itself when the body is read.
    headers.remove(hyper::header::HOST);
    headers.remove(hyper::header::EXPECT);
    out.added.apply(&mut headers);
    *req.headers_mut() = headers;
    let mut response = client.request(req).await.map_err(pooled_error)?;
    let upgrade = (upgrade && response.status() == StatusCode::SWITCHING_PROTOCOLS)
        .then(|| hyper::upgrade::on(&mut response));
    Ok(Answer {
        response: response.map(|b| b.map_err(BoxError::from).boxed()),
        upgrade,
    })
}

fn address(b: &Backend) -> usize {
    std::ptr::from_ref(b) as usize
}

impl Clients {
    /// `pinned`: connect to this address only (one address of a pool
    /// member's host name), whatever `b`'s host resolves to.
    pub(crate) fn new(b: &Backend, pinned: Option<SocketAddr>) -> Result<Clients, tls::TlsError> {
        let config = tls::client_config(b)?;
        let lean = match b.protocol {
            BackendProtocol::Http2 => None,
            BackendProtocol::Http1 => {
                // The lean client offers HTTP/1.1 only.
                let tls = (b.scheme == "https").then(|| {
                    let mut lean = config.clone();
                    lean.alpn_protocols = vec![b"http/1.1".to_vec()];
                    Arc::new(lean)
                });
                let pool = h1_client::Pool::new(&b.authority, tls, b.connect_timeout)
                    .map_err(|why| {
                        tls::TlsError::ServerName(format!("backend {}: {why}", b.authority))
                    })?
                    .pinned(pinned);
                Some(h1_client::Shared::new(pool))
            }
        };
        Ok(Clients {
            lean,
            connector: connector(b, config, pinned),
            protocol: b.protocol,
            pooled: ThreadLocal::new(),
        })
    }
}

fn pooled_error(err: hyper_util::client::legacy::Error) -> BackendError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return BackendError::BodyTooLarge;
        }
        if let Some(bad) = e.downcast_ref::<MalformedBody>() {
            return BackendError::BadRequestBody(bad.0.clone().into());
        }
        source = e.source();
    }
    if err.is_connect() {
        BackendError::Connect(err.into())
    } else {
        BackendError::Failed(err.into())
    }
}

fn connector(b: &Backend, tls: rustls::ClientConfig, pinned: Option<SocketAddr>) -> Connector {
    let mut http = HttpConnector::new_with_resolver(Resolve::new(pinned));
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(Some(b.connect_timeout));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    match b.protocol {
        BackendProtocol::Http1 => https.enable_http1().wrap_connector(http),
        BackendProtocol::Http2 => https.enable_http2().wrap_connector(http),
    }
}

fn client(connector: &Connector, protocol: BackendProtocol) -> PooledClient {
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
