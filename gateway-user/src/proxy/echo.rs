//! The demo backend: answers every request with a JSON description of what
//! it received (method, path, query, headers, body size). `cargo xtask run`
//! starts it so that the default configuration has something to proxy to.

use std::convert::Infallible;

use http_body_util::BodyExt;
use hyper::{Request, Response, body::Incoming, header, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::net::TcpListener;

use super::{ProxyBody, respond};

/// Serves the echo backend on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let conn = builder
            .serve_connection(
                TokioIo::new(stream),
                service_fn(|req| async { Ok::<_, Infallible>(echo(req).await) }),
            )
            .into_owned();
        tokio::spawn(conn);
    }
}

async fn echo(req: Request<Incoming>) -> Response<ProxyBody> {
    let (parts, body) = req.into_parts();
    let body_bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect();
    let answer = serde_json::json!({
        "service": "edgegw-demo-echo",
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_bytes": body_bytes,
    });
    let mut response = Response::new(respond::full(format!("{answer}\n")));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}
