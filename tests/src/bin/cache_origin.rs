//! A backend process for the cache tests: `cache_origin --port P`. Every
//! answer's body is `#<serial> <method> <path>?<query>`, the serial
//! counting the requests it served, so a test tells a cached answer (an
//! old serial) from a fresh one. The query shapes the response:
//! `cc=VALUE` sets `Cache-Control`, `cookie=1` adds `Set-Cookie`,
//! `status=N` answers N, `size=N` pads the body to N bytes, `delay=MS`
//! answers that many milliseconds late (counted at once). `/__hits`
//! tells how many requests it served (itself excluded).

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

fn answer(served: &AtomicU64, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() == "/__hits" {
        let n = served.load(Ordering::SeqCst).to_string();
        return Response::new(Full::new(Bytes::from(n)));
    }
    let serial = served.fetch_add(1, Ordering::SeqCst) + 1;
    let query = req.uri().query().unwrap_or_default();
    let last = req
        .headers()
        .get("x-last")
        .map(|v| format!(" last={}", String::from_utf8_lossy(v.as_bytes())))
        .unwrap_or_default();
    let mut body = format!(
        "#{serial} {} {}?{query}{last}",
        req.method(),
        req.uri().path()
    );
    let mut response = Response::builder().header("content-type", "text/plain");
    let mut status = 200;
    for (name, value) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        let value = value.replace("%20", " ").replace("%2C", ",");
        match name {
            "cc" => response = response.header("cache-control", value),
            "cookie" => response = response.header("set-cookie", "session=abc; Path=/"),
            "status" => status = value.parse().unwrap_or(200),
            "size" => {
                let size: usize = value.parse().unwrap_or(0);
                if size > body.len() {
                    body.push_str(&"x".repeat(size - body.len()));
                }
            }
            _ => {}
        }
    }
    response
        .status(status)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut port = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse::<u16>().ok()),
            other => panic!("unknown argument {other}; use --port P"),
        }
    }
    let port = port.expect("--port P");
    let served = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        println!("listening on {}", listener.local_addr().unwrap());
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let served = served.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let response = answer(&served, &req);
                    let delay = req
                        .uri()
                        .query()
                        .unwrap_or_default()
                        .split('&')
                        .find_map(|kv| kv.strip_prefix("delay="))
                        .and_then(|ms| ms.parse().ok())
                        .unwrap_or(0);
                    async move {
                        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
