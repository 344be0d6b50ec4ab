//! The lean server against hyper on the same bytes: a request the lean
//! server serves, hyper must serve too, identically (method, target,
//! headers, body). What the lean server does not serve it hands to hyper,
//! so the gateway as a whole answers like hyper: the same request, or
//! both refuse.
#![no_main]

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use edgegw::proxy::fuzzing::{lean_read, limits};
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Response, body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use tokio::io::AsyncWriteExt;

/// The first request hyper's server reads from `bytes`, body included;
/// `None` when it refuses them (or they end first).
fn hyper_reads(bytes: &[u8], max_header_bytes: usize) -> Option<Request<Bytes>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (mut client, server) = tokio::io::duplex(bytes.len() + 64 * 1024);
        client.write_all(bytes).await.unwrap();
        client.shutdown().await.unwrap();
        let first: Arc<Mutex<Option<Request<Bytes>>>> = Arc::default();
        let seen = first.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let seen = seen.clone();
            async move {
                let (parts, body) = req.into_parts();
                if let Ok(body) = body.collect().await {
                    let mut seen = seen.lock().unwrap();
                    if seen.is_none() {
                        *seen = Some(Request::from_parts(parts, body.to_bytes()));
                    }
                }
                Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
            }
        });
        // As the gateway configures hyper (see `proxy::server::h1_builder`);
        // the client's end of stream comes right after its bytes, and a
        // request before it is still served.
        let _ = http1::Builder::new()
            .half_close(true)
            .max_buf_size(max_header_bytes)
            .max_header_size(max_header_bytes)
            .serve_connection(TokioIo::new(server), service)
            .await;
        drop(client);
        first.lock().unwrap().take()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&[big], bytes)) = data.split_first_chunk::<1>() else {
        return;
    };
    // The smallest head limit, or one past hyper's longest URI.
    let limits = limits(if big & 1 == 0 { 8192 } else { 80 * 1024 });
    let Some(lean) = lean_read(bytes, &[], &limits) else {
        return;
    };
    let hyper = hyper_reads(bytes, limits.max_header_bytes).unwrap_or_else(|| {
        panic!(
            "the lean server serves what hyper refuses: {:?}",
            String::from_utf8_lossy(bytes)
        )
    });
    assert_eq!(lean.method(), hyper.method());
    assert_eq!(lean.uri(), hyper.uri());
    assert_eq!(lean.version(), hyper.version());
    assert_eq!(lean.headers(), hyper.headers());
    assert_eq!(lean.body(), hyper.body());
});
