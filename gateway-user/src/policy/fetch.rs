//! Requests the gateway sends itself: small JSON documents (JWKS, OpenID
//! configuration, OAuth 2.0 tokens) and `send-request`'s, each with a
//! timeout and a size cap; HTTPS trusts the system CA bundle.

use std::{sync::OnceLock, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BYTES: usize = 1 << 20;

pub async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, String> {
    let request = hyper::Request::get(url)
        .body(Full::default())
        .map_err(|_| format!("\"{url}\" is not a URL"))?;
    send_json(url, request).await
}

/// POSTs `form` as `application/x-www-form-urlencoded` (an OAuth 2.0
/// token request) and reads the JSON answer.
pub async fn post_form_json<T: serde::de::DeserializeOwned>(
    url: &str,
    form: &[(&str, &str)],
) -> Result<T, String> {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let request = hyper::Request::post(url)
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(hyper::header::ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| format!("\"{url}\" is not a URL"))?;
    send_json(url, request).await
}

/// An HTTP and HTTPS connector; HTTPS trusts the system CA bundle.
fn connector(connect_timeout: Duration) -> Result<HttpsConnector<HttpConnector>, String> {
    let backend = crate::config::Backend {
        scheme: "https".into(),
        authority: String::new(),
        base_path: String::new(),
        protocol: crate::config::BackendProtocol::Http1,
        ca_file: None,
        connect_timeout,
        response_timeout: connect_timeout,
        pool: None,
        client_identity: None,
    };
    let tls = crate::tls::client_config(&backend).map_err(|e| format!("TLS client: {e}"))?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    Ok(HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

type Shared = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The client of every request the gateway sends itself: built once, so
/// its connections are kept for the next request.
fn shared() -> Result<&'static Shared, String> {
    static CLIENT: OnceLock<Result<Shared, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            connector(Duration::from_secs(10))
                .map(|c| Client::builder(TokioExecutor::new()).build(c))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Sends `request` and reads its whole answer, of at most `max` bytes,
/// within `timeout`; the error says what failed, in one line.
pub async fn send(
    request: hyper::Request<Full<Bytes>>,
    timeout: Duration,
    max: usize,
) -> Result<hyper::Response<Bytes>, String> {
    let client = shared()?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = format!("{why}: {s}");
                source = s.source();
            }
            why
        })?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, max)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok(hyper::Response::from_parts(parts, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
}

async fn send_json<T: serde::de::DeserializeOwned>(
    url: &str,
    request: hyper::Request<Full<Bytes>>,
) -> Result<T, String> {
    let (parts, body) = send(request, TIMEOUT, MAX_BYTES)
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .into_parts();
    let status = parts.status;
    if !status.is_success() {
        // An OAuth error answer says why (`error_description`).
        let why = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let d = v.get("error_description").or_else(|| v.get("error"))?;
                d.as_str()
                    .map(|d| d.lines().next().unwrap_or_default().to_string())
            })
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        return Err(format!("{url}: status {status}{why}"));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
}
