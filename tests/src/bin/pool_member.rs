//! A backend process for the pool tests: `pool_member --port P --name N
//! [--host IP] [--fail]` (host 127.0.0.1 unless given). Every answer carries `x-member: N`; `/healthz` answers 200;
//! other paths answer 200 with the name, or 500 while failing. Its own
//! `/__fail` and `/__ok` switch the mode, `/__hits` tells how many
//! requests (health checks excluded) it served. A process of its own, so
//! a test can kill it and start it again on the same port.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

struct State {
    name: String,
    failing: AtomicBool,
    hits: AtomicU64,
}

fn answer(state: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, body) = match req.uri().path() {
        "/healthz" => (200, "ok".to_string()),
        "/__fail" => {
            state.failing.store(true, Ordering::SeqCst);
            (200, "failing".into())
        }
        "/__ok" => {
            state.failing.store(false, Ordering::SeqCst);
            (200, "ok".into())
        }
        "/__hits" => (200, state.hits.load(Ordering::SeqCst).to_string()),
        _ => {
            state.hits.fetch_add(1, Ordering::SeqCst);
            if state.failing.load(Ordering::SeqCst) {
                (500, format!("{} fails", state.name))
            } else {
                (200, state.name.clone())
            }
        }
    };
    Response::builder()
        .status(status)
        .header("x-member", &state.name)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut port, mut name, mut failing) = (None, None, false);
    let mut host: std::net::IpAddr = [127, 0, 0, 1].into();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse::<u16>().ok()),
            "--name" => name = args.next(),
            "--host" => host = args.next().and_then(|h| h.parse().ok()).expect("--host IP"),
            "--fail" => failing = true,
            other => panic!("unknown argument {other}; use --port P --name N [--host IP] [--fail]"),
        }
    }
    let port = port.expect("--port P");
    let state = Arc::new(State {
        name: name.expect("--name N"),
        failing: failing.into(),
        hits: AtomicU64::new(0),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let listener = TcpListener::bind((host, port)).await.unwrap();
        println!("listening on {}", listener.local_addr().unwrap());
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let response = answer(&state, &req);
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
