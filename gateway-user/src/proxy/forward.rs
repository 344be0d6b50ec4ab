//! Forwarding a routed request to its backend over a pooled client.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use http_body_util::BodyExt;
use hyper::{
    HeaderMap, Request, Response, StatusCode, Uri,
    body::Incoming,
    header::{self, HeaderName, HeaderValue},
};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

use super::{ProxyBody, Router, respond};
use crate::config::Config;

/// Headers that describe one hop and must not be forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Routing table and backend client shared by every connection.
pub struct Proxy {
    router: Router,
    client: Client<HttpConnector, Incoming>,
}

impl Proxy {
    pub fn new(config: &Config) -> Arc<Proxy> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Arc::new(Proxy {
            router: Router::new(config.apis.clone()),
            client,
        })
    }

    /// Routes and forwards one request; never fails, errors become responses.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
        client_addr: SocketAddr,
    ) -> Response<ProxyBody> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let (api_name, response) = self.forward(req, client_addr).await;
        tracing::info!(
            client = %client_addr.ip(),
            %method,
            %path,
            api = api_name.unwrap_or("-"),
            status = response.status().as_u16(),
            duration_us = started.elapsed().as_micros() as u64,
            "request"
        );
        response
    }

    async fn forward(
        &self,
        mut req: Request<Incoming>,
        client_addr: SocketAddr,
    ) -> (Option<&str>, Response<ProxyBody>) {
        let path = req.uri().path();
        let Some((api, rest)) = self.router.route(path) else {
            let message = format!("No API matches the path {path}");
            return (None, respond::error(StatusCode::NOT_FOUND, &message));
        };
        let query = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let target = format!(
            "{}://{}{}{}{}",
            api.backend.scheme, api.backend.authority, api.backend.base_path, rest, query
        );
        let Ok(uri) = target.parse::<Uri>() else {
            return (
                Some(&api.name),
                respond::error(
                    StatusCode::BAD_REQUEST,
                    "The request path cannot be forwarded",
                ),
            );
        };
        let original_host = req.headers().get(header::HOST).cloned();
        *req.uri_mut() = uri;
        *req.version_mut() = hyper::Version::HTTP_11;
        let headers = req.headers_mut();
        strip_hop_by_hop(headers);
        add_forwarded(headers, client_addr, original_host);
        headers.remove(header::HOST);

        match self.client.request(req).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                (Some(&api.name), Response::from_parts(parts, body.boxed()))
            }
            Err(err) => {
                tracing::warn!(api = %api.name, backend = %api.backend.authority, error = %err, "backend request failed");
                let message = format!("Backend for API {} is unavailable", api.name);
                (
                    Some(&api.name),
                    respond::error(StatusCode::BAD_GATEWAY, &message),
                )
            }
        }
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in Connection are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

fn add_forwarded(headers: &mut HeaderMap, client_addr: SocketAddr, host: Option<HeaderValue>) {
    let ip = client_addr.ip().to_string();
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {ip}"),
        None => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(host) = host {
        headers.insert("x-forwarded-host", host);
    }
}
