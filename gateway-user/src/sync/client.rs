//! The HTTPS client of the control plane (outbound only): the
//! configuration long-poll and the heartbeat of `docs/sync-protocol.md`.
//!
//! Every request has a deadline (a hanging control plane is cut off), a
//! body cap, and reads the token file afresh. Anything but the expected
//! answer is an error that changes nothing.
//!
//! With several control-plane URLs (replicas on one database) requests go
//! to the current one; when it is unreachable or answers 5xx the client
//! moves to the next, in order, round the list. The caller retries as
//! before, now on the next replica.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, StatusCode, header};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde::Deserialize;

use crate::config::{Backend, BackendProtocol, ControlPlane, DELTA_CONTENT_TYPE};
use crate::fleet::FleetTotal;

/// Largest answer accepted from the control plane.
pub const MAX_BODY: usize = 16 << 20;
/// Time on top of the long-poll wait before a request counts as hung.
const MARGIN: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(
        "cannot read the gateway token from {path}: {message}; write the token the control plane issued for this gateway there"
    )]
    TokenFile { path: PathBuf, message: String },
    /// 401: the token expired or was revoked; the control plane's message.
    #[error("{0}")]
    TokenRejected(String),
    #[error("control plane {url} unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("control plane {url} answered {message}")]
    Protocol { url: String, message: String },
}

/// What a configuration poll brought.
pub enum Fetched {
    /// A bundle with another version than ours: its JSON text.
    Changed(String),
    /// A change of subscriptions from our version (`config::BundleDelta`):
    /// its JSON text.
    Delta(String),
    /// The wait ran out with no change (304).
    Unchanged,
}

/// What became of an analytics batch the control plane answered.
pub enum Delivery {
    /// Counted (or, `duplicate`, counted before).
    Accepted { duplicate: bool },
    /// Refused for good (e.g. 400): the control plane's message.
    Refused(String),
}

pub struct CpClient {
    /// One client per URL (each with its own TLS server name).
    http: Vec<Client<HttpsConnector<HttpConnector>, Full<Bytes>>>,
    urls: Vec<String>,
    /// Index into `urls` of the replica requests go to.
    current: AtomicUsize,
    token_file: PathBuf,
}

#[derive(Deserialize)]
struct HeartbeatAnswer {
    #[serde(default)]
    fleet: Vec<FleetTotal>,
}

impl CpClient {
    pub fn new(cp: &ControlPlane) -> Result<CpClient, crate::tls::TlsError> {
        let http = cp
            .urls
            .iter()
            .map(|url| http_client(cp, url))
            .collect::<Result<_, _>>()?;
        Ok(CpClient {
            http,
            urls: cp.urls.clone(),
            current: AtomicUsize::new(0),
            token_file: cp.token_file.clone(),
        })
    }

    /// The URL requests go to now.
    pub fn url(&self) -> &str {
        &self.urls[self.current()]
    }

    fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed) % self.urls.len()
    }

    /// After a failure on replica `failed`, moves to the next one (once,
    /// however many requests failed there at the same time).
    fn move_on(&self, failed: usize, error: &SyncError) {
        if self.urls.len() < 2 {
            return;
        }
        let next = (failed + 1) % self.urls.len();
        if self
            .current
            .compare_exchange(failed, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(
                "{error}; moving to the next control plane replica {}",
                self.urls[next]
            );
        }
    }

    /// `GET /v1/gateway/config`, held by the control plane up to `wait`
    /// while `seen` is still its version.
    pub async fn config(&self, seen: Option<u64>, wait: Duration) -> Result<Fetched, SyncError> {
        let mut req = Request::get(format!("/v1/gateway/config?wait={}", wait.as_secs()));
        if let Some(v) = seen {
            req = req.header(header::IF_NONE_MATCH, format!("\"{v}\""));
        }
        // Changes of subscriptions alone may come as a delta from `seen`.
        req = req.header(
            header::ACCEPT,
            format!("application/json, {DELTA_CONTENT_TYPE}"),
        );
        let (url, status, content_type, body) = self.send(req, Bytes::new(), wait + MARGIN).await?;
        let is_delta = content_type.as_deref() == Some(DELTA_CONTENT_TYPE);
        match status {
            StatusCode::OK => String::from_utf8(body.to_vec())
                .map(|text| match is_delta {
                    true => Fetched::Delta(text),
                    false => Fetched::Changed(text),
                })
                .map_err(|_| protocol(url, "a configuration that is not UTF-8 text".into())),
            StatusCode::NOT_MODIFIED => Ok(Fetched::Unchanged),
            other => Err(refused(url, other, &body)),
        }
    }

    /// `POST /v1/gateway/heartbeat`; the fleet totals of the answer.
    pub async fn heartbeat(&self, body: &serde_json::Value) -> Result<Vec<FleetTotal>, SyncError> {
        let req =
            Request::post("/v1/gateway/heartbeat").header(header::CONTENT_TYPE, "application/json");
        let bytes = Bytes::from(serde_json::to_vec(body).expect("heartbeat serialises"));
        let (url, status, _, body) = self.send(req, bytes, MARGIN).await?;
        if status != StatusCode::OK {
            return Err(refused(url, status, &body));
        }
        serde_json::from_slice::<HeartbeatAnswer>(&body)
            .map(|a| a.fleet)
            .map_err(|e| {
                protocol(
                    url,
                    format!("a heartbeat answer that is not valid JSON: {e}"),
                )
            })
    }

    /// `POST /v1/gateway/analytics` with one batch (the outbox's bytes).
    /// An error leaves the batch to be sent again; a refusal is final.
    pub async fn analytics(&self, batch: Bytes) -> Result<Delivery, SyncError> {
        let req =
            Request::post("/v1/gateway/analytics").header(header::CONTENT_TYPE, "application/json");
        let (url, status, _, body) = self.send(req, batch, MARGIN).await?;
        if status.is_success() {
            #[derive(Deserialize)]
            struct Answer {
                #[serde(default)]
                duplicate: bool,
            }
            let duplicate = serde_json::from_slice::<Answer>(&body).is_ok_and(|a| a.duplicate);
            return Ok(Delivery::Accepted { duplicate });
        }
        let retried = [
            StatusCode::UNAUTHORIZED,
            // A control plane without analytics (older): kept for its upgrade.
            StatusCode::NOT_FOUND,
            StatusCode::REQUEST_TIMEOUT,
            StatusCode::TOO_MANY_REQUESTS,
        ];
        if status.is_client_error() && !retried.contains(&status) {
            let SyncError::Protocol { message, .. } = refused(url, status, &body) else {
                unreachable!("only 401 is a token error")
            };
            return Ok(Delivery::Refused(message));
        }
        Err(refused(url, status, &body))
    }

    /// Sends `req` (its URI a path) to the current replica; the replica's
    /// URL with the answer. Unreachable, or a 5xx: the next request goes to
    /// the next replica.
    async fn send(
        &self,
        req: hyper::http::request::Builder,
        body: Bytes,
        deadline: Duration,
    ) -> Result<(&str, StatusCode, Option<String>, Bytes), SyncError> {
        let index = self.current();
        let url = self.urls[index].as_str();
        let answer = self.exchange(index, req, body, deadline).await;
        match &answer {
            Err(e @ SyncError::Unreachable { .. }) => self.move_on(index, e),
            Ok((status, _, _)) if status.is_server_error() => {
                self.move_on(index, &protocol(url, format!("status {}", status.as_u16())))
            }
            _ => {}
        }
        answer.map(|(status, content_type, body)| (url, status, content_type, body))
    }

    async fn exchange(
        &self,
        index: usize,
        req: hyper::http::request::Builder,
        body: Bytes,
        deadline: Duration,
    ) -> Result<(StatusCode, Option<String>, Bytes), SyncError> {
        let url = self.urls[index].as_str();
        let token = read_token(&self.token_file)?;
        let path = req.uri_ref().map(|u| u.to_string()).unwrap_or_default();
        let req = req
            .uri(format!("{url}{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Full::new(body))
            .map_err(|e| SyncError::TokenFile {
                path: self.token_file.clone(),
                message: format!("unusable token: {e}"),
            })?;
        let method = req.method().clone();
        let exchange = async {
            let response = self.http[index]
                .request(req)
                .await
                .map_err(|e| unreachable(url, &e))?;
            let status = response.status();
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    protocol(
                        url,
                        format!("a body that failed or exceeded {MAX_BODY} bytes: {e}"),
                    )
                })?
                .to_bytes();
            Ok((status, content_type, body))
        };
        tokio::time::timeout(deadline, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(SyncError::Unreachable {
                    url: url.to_string(),
                    message: format!(
                        "no complete answer to {method} within {}s",
                        deadline.as_secs()
                    ),
                })
            })
    }
}

/// The HTTPS client for one control-plane URL.
fn http_client(
    cp: &ControlPlane,
    url: &str,
) -> Result<Client<HttpsConnector<HttpConnector>, Full<Bytes>>, crate::tls::TlsError> {
    let uri: hyper::Uri = url.parse().expect("validated with the configuration");
    // The backend TLS settings: the CA file, else the system bundle.
    let tls = crate::tls::client_config(&Backend {
        scheme: "https".into(),
        authority: uri.authority().map(|a| a.to_string()).unwrap_or_default(),
        base_path: String::new(),
        protocol: BackendProtocol::Http1,
        ca_file: cp.ca_file.clone(),
        connect_timeout: CONNECT_TIMEOUT,
        response_timeout: CONNECT_TIMEOUT,
        pool: None,
        client_identity: cp.client_identity.clone(),
    })?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

fn unreachable(url: &str, e: &hyper_util::client::legacy::Error) -> SyncError {
    // The chain carries the useful part (refused, TLS, DNS).
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    SyncError::Unreachable {
        url: url.to_string(),
        message,
    }
}

fn protocol(url: &str, message: String) -> SyncError {
    SyncError::Protocol {
        url: url.to_string(),
        message,
    }
}

fn refused(url: &str, status: StatusCode, body: &[u8]) -> SyncError {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: String,
    }
    let message = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&body[..body.len().min(200)]).into());
    if status == StatusCode::UNAUTHORIZED {
        return SyncError::TokenRejected(format!("control plane refused the token: {message}"));
    }
    protocol(url, format!("status {}: {message}", status.as_u16()))
}

fn read_token(path: &Path) -> Result<String, SyncError> {
    let err = |message: String| SyncError::TokenFile {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(err("the file is empty".into()));
    }
    Ok(token.to_string())
}
