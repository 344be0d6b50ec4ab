//! Small HTTP(S) GETs of JSON documents (JWKS, OpenID configuration), with
//! a timeout and a size cap; HTTPS trusts the system CA bundle.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BYTES: usize = 1 << 20;

pub async fn get_json<T: serde::de::DeserializeOwned>(url: &str) -> Result<T, String> {
    let uri: hyper::Uri = url.parse().map_err(|_| format!("\"{url}\" is not a URL"))?;
    let backend = crate::config::Backend {
        scheme: uri.scheme_str().unwrap_or("http").into(),
        authority: uri.authority().map(|a| a.to_string()).unwrap_or_default(),
        base_path: String::new(),
        protocol: crate::config::BackendProtocol::Http1,
        ca_file: None,
        connect_timeout: TIMEOUT,
        response_timeout: TIMEOUT,
        pool: None,
        client_identity: None,
    };
    let tls = crate::tls::client_config(&backend).map_err(|e| format!("{url}: {e}"))?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(TIMEOUT));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let response = tokio::time::timeout(TIMEOUT, client.get(uri))
        .await
        .map_err(|_| format!("{url}: no answer within {TIMEOUT:?}"))?
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: status {}", response.status()));
    }
    let body = Limited::new(response.into_body(), MAX_BYTES)
        .collect()
        .await
        .map_err(|e| format!("{url}: {e}"))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))
}
