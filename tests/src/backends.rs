//! Real backends for the proxy tests, served from this test process on
//! ephemeral loopback ports: an HTTP/1.1 + HTTP/2 echo (optionally TLS),
//! a gRPC-style streaming echo with trailers, a WebSocket echo, and a
//! backend that records the raw bytes it receives (`RawBackend`).

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::{
    HeaderMap, Request, Response,
    body::{Frame, Incoming},
    header::HeaderValue,
    service::service_fn,
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::{net::TcpListener, runtime::Runtime};

use crate::certs::TestCert;

type Body = BoxBody<Bytes, Infallible>;

/// A backend running on its own runtime; stops when dropped.
pub struct TestBackend {
    pub addr: SocketAddr,
    /// Requests (or WebSocket sessions) it has received.
    pub hits: Arc<AtomicUsize>,
    _runtime: Runtime,
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

impl TestBackend {
    /// The echo backend over HTTP/1.1 and HTTP/2 (prior knowledge).
    ///
    /// - default: a JSON description of the request (method, path, query,
    ///   headers, body_bytes, body as text);
    /// - `?delay_ms=N`: answers after N ms;
    /// - every answer names the connection it came on: `x-echo-peer`, the
    ///   client's address and port;
    /// - header `x-stream: 1`: streams every request body chunk back as
    ///   `echo:<chunk>` as soon as it arrives, then trailers
    ///   `grpc-status: 0` and `x-chunks: <n>` (gRPC-style).
    pub fn echo() -> TestBackend {
        Self::start(None)
    }

    /// The echo backend behind TLS with `cert` (ALPN h2 and http/1.1).
    pub fn echo_tls(cert: &TestCert) -> TestBackend {
        Self::start(Some(cert))
    }

    fn start(cert: Option<&TestCert>) -> TestBackend {
        let runtime = runtime();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let acceptor = cert.map(tls_acceptor);
        let counter = hits.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                let acceptor = acceptor.clone();
                // Which connection served a request: pool reuse is observable.
                let peer = HeaderValue::try_from(peer.to_string()).unwrap();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let peer = peer.clone();
                        async move {
                            let mut answer = echo(req).await;
                            answer.headers_mut().insert("x-echo-peer", peer);
                            Ok::<_, Infallible>(answer)
                        }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let _ = match acceptor {
                        None => {
                            builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await
                        }
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => builder.serve_connection(TokioIo::new(tls), service).await,
                            Err(_) => return,
                        },
                    };
                });
            }
        });
        TestBackend {
            addr,
            hits,
            _runtime: runtime,
        }
    }

    /// A WebSocket server that echoes every message back.
    pub fn websocket_echo() -> TestBackend {
        let runtime = runtime();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    while let Some(Ok(msg)) = ws.next().await {
                        if msg.is_close() {
                            break;
                        }
                        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        TestBackend {
            addr,
            hits,
            _runtime: runtime,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A TLS acceptor serving `cert`, offering ALPN h2 and http/1.1.
pub fn tls_acceptor(cert: &TestCert) -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let chain = CertificateDer::pem_file_iter(&cert.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&cert.key).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn echo(req: Request<Incoming>) -> Response<Body> {
    if let Some(ms) = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("delay_ms=")))
        .and_then(|v| v.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if req.headers().get("x-stream").is_some() {
        return stream_echo(req);
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body_bytes = body.len();
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect();
    let answer = serde_json::json!({
        "method": parts.method.as_str(),
        "version": format!("{:?}", parts.version),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_bytes": body_bytes,
        "body": String::from_utf8_lossy(&body),
    });
    let mut response = Response::new(Full::new(Bytes::from(answer.to_string())).boxed());
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

/// Echoes each request chunk as it arrives, then trailers.
fn stream_echo(req: Request<Incoming>) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Frame<Bytes>>(16);
    let mut body = req.into_body();
    tokio::spawn(async move {
        let mut chunks = 0;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref().filter(|d| !d.is_empty()) {
                chunks += 1;
                let mut out = b"echo:".to_vec();
                out.extend_from_slice(data);
                if tx.send(Frame::data(Bytes::from(out))).await.is_err() {
                    return;
                }
            }
        }
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        trailers.insert("x-chunks", HeaderValue::from(chunks));
        let _ = tx.send(Frame::trailers(trailers)).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|f| (Ok::<_, Infallible>(f), rx))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    response
}

/// A backend that records the exact bytes of every request it receives
/// (head and body, as they came off the socket) and answers each with the
/// same fixed bytes, keeping the connection open. For tests that assert
/// what reached a backend byte for byte, or that nothing did.
pub struct RawBackend {
    pub addr: SocketAddr,
    received: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl RawBackend {
    /// Serves on an ephemeral loopback port until the test process ends.
    pub fn start(answer: &'static [u8]) -> RawBackend {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = log.clone();
                std::thread::spawn(move || record(stream, answer, &log));
            }
        });
        RawBackend { addr, received }
    }

    /// The requests received since the last call, oldest first.
    pub fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.received.lock().unwrap())
    }
}

/// Reads requests off one connection: each head, then the body its
/// `Content-Length` or chunked framing announces, all kept verbatim.
fn record(mut stream: std::net::TcpStream, answer: &[u8], log: &std::sync::Mutex<Vec<Vec<u8>>>) {
    use std::io::{Read, Write};
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(len) = request_len(&buf) else {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let request: Vec<u8> = buf.drain(..len).collect();
        log.lock().unwrap().push(request);
        if stream.write_all(answer).is_err() {
            return;
        }
    }
}

/// The length of the first whole request in `buf`, if it is all there.
fn request_len(buf: &[u8]) -> Option<usize> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
    let header = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    if header("transfer-encoding").is_some_and(|v| v.ends_with("chunked")) {
        // Chunks until the last (size 0) and the empty line after it.
        let mut at = head;
        loop {
            let line_end = buf[at..].windows(2).position(|w| w == b"\r\n")? + at;
            let size_text = String::from_utf8_lossy(&buf[at..line_end]);
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            at = line_end + 2;
            if size == 0 {
                // No trailers: one empty line; else they end with one.
                if buf.len() >= at + 2 && buf[at..at + 2] == *b"\r\n" {
                    return Some(at + 2);
                }
                return Some(buf[at..].windows(4).position(|w| w == b"\r\n\r\n")? + at + 4);
            }
            at += size + 2;
            if at > buf.len() {
                return None;
            }
        }
    }
    let body = header("content-length").map_or(0, |v| v.parse().unwrap_or(0));
    (buf.len() >= head + body).then_some(head + body)
}
