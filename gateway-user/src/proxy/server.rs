//! Accepting connections on the plain and TLS listeners and serving
//! HTTP/1.1 and HTTP/2 on them (ALPN on TLS, prior knowledge on plain),
//! with the process-protection limits and a graceful drain on shutdown.
//! HTTP/1.1 connections start on the lean server (`h1_server`), which
//! hands a connection to hyper when a request needs it; HTTP/2 is hyper's.

use std::{
    convert::Infallible, future::Future, net::SocketAddr, pin::Pin, sync::Arc, time::Duration,
};

use bytes::Bytes;

use hyper::{
    Request, Version,
    body::{Body, Incoming},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpSocket, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};

use super::{
    BoxError, SharedGateway,
    drain::{Drain, Watch},
    forward::{self, Conn},
    h1_server::{self, Checked, Ended, Rewind},
    headers::ClientIp,
    limits::{Activity, Tracked},
    workers::Workers,
};
use crate::{
    admin::{Metrics, Rejection},
    config::Limits,
};

/// The bound client listeners.
pub struct Listeners {
    pub plain: TcpListener,
    pub tls: Option<TcpListener>,
}

/// The header count hyper allows when not told otherwise.
const HYPER_MAX_HEADERS: usize = 100;

/// Most concurrent HTTP/2 streams per connection.
const MAX_H2_STREAMS: u32 = 256;

/// Serves until `shutdown` resolves, then stops accepting and gives
/// in-flight requests up to `drain` to finish.
pub async fn serve(
    listeners: Listeners,
    shared: SharedGateway,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
    deadline: Duration,
) {
    let drain = Drain::default();
    // The connection cap is fixed at start: it sizes the process (file
    // descriptors), not a per-request policy.
    let max_connections = shared.load().limits.max_connections;
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut workers = Workers::start();
    tokio::pin!(shutdown);
    loop {
        let (accepted, tls) = tokio::select! {
            a = listeners.plain.accept() => (a, false),
            a = accept_tls(listeners.tls.as_ref()) => (a, true),
            () = &mut shutdown => break,
        };
        let (stream, client) = match accepted {
            Ok(a) => a,
            Err(err) => {
                // Out of file descriptors and similar: back off, keep serving.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics.reject(Rejection::MaxConnections);
            tracing::debug!(%client, max_connections, "connection refused: at the cap");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Registered again with the reactor of the worker that serves it.
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let gw = shared.load_full();
        let acceptor = match (tls, &gw.tls) {
            (false, _) => None,
            (true, Some(server_tls)) => Some(server_tls.clone()),
            (true, None) => continue,
        };
        let conn = Conn {
            client,
            client_ip: ClientIp::new(client.ip()),
            proto: if tls { "https" } else { "http" },
            activity: Activity::new(),
            client_cert: None,
        };
        workers.spawn(connection(
            stream,
            acceptor,
            conn,
            gw.limits.clone(),
            shared.clone(),
            metrics.clone(),
            drain.watch(),
            permit,
        ));
    }
    drop(listeners);
    tracing::info!(
        deadline_secs = deadline.as_secs(),
        connections = drain.open(),
        "draining in-flight requests"
    );
    if tokio::time::timeout(deadline, drain.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("drain deadline reached; closing remaining connections");
    }
    drop(workers);
}

async fn accept_tls(
    listener: Option<&TcpListener>,
) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

#[expect(clippy::too_many_arguments, reason = "one connection's whole context")]
async fn connection(
    stream: std::net::TcpStream,
    acceptor: Option<Arc<crate::tls::ServerTls>>,
    mut conn: Conn,
    limits: Limits,
    shared: SharedGateway,
    metrics: Arc<Metrics>,
    drain: Watch,
    _permit: OwnedSemaphorePermit,
) {
    let Ok(stream) = TcpStream::from_std(stream) else {
        return;
    };
    metrics.connection_opened();
    let activity = conn.activity.clone();
    match acceptor {
        None => {
            let io = Tracked::new(stream, activity);
            serve_http(io, false, conn, &limits, shared, &metrics, drain).await;
        }
        // The handshake gets the header read timeout too (slow TLS clients).
        Some(acceptor) => {
            match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await {
                Ok(Ok((tls, client_cert))) => {
                    conn.client_cert = client_cert;
                    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                    let io = Tracked::new(tls, activity);
                    serve_http(io, h2, conn, &limits, shared, &metrics, drain).await;
                }
                Ok(Err(err)) => {
                    metrics.reject(Rejection::TlsHandshake);
                    tracing::debug!(client = %conn.client, error = %err, "TLS handshake failed");
                }
                Err(_) => metrics.reject(Rejection::TlsHandshake),
            }
        }
    }
    metrics.connection_closed();
}

/// hyper for HTTP/2 (ALPN, or prior knowledge: the auto builder reads the
/// preface).
fn auto_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let mut http1 = builder.http1();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes);
    // hyper's own limit parses into an inline array; any explicit limit,
    // even the same number, makes it build a new one for every request.
    if limits.max_headers != HYPER_MAX_HEADERS {
        http1.max_headers(limits.max_headers);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(MAX_H2_STREAMS);
    builder
}

/// hyper for the HTTP/1.1 connections the lean server hands over, with
/// the head limit exact: hyper-util's auto builder only bounds its read
/// buffer, which lets a complete head up to a read's size past the limit
/// through.
fn h1_builder(limits: &Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .max_header_size(limits.max_header_bytes);
    if limits.max_headers != HYPER_MAX_HEADERS {
        builder.max_headers(limits.max_headers);
    }
    builder
}

/// Binds a client listener with `backlog` pending connections (the
/// kernel caps it at `net.core.somaxconn`).
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As `TcpListener::bind` does: a restart need not wait for TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serves one connection: the lean HTTP/1.1 server first (unless ALPN
/// chose HTTP/2), then hyper if a request needs it.
async fn serve_http<I>(
    mut io: I,
    h2: bool,
    conn: Conn,
    limits: &Limits,
    shared: SharedGateway,
    metrics: &Arc<Metrics>,
    drain: Watch,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = conn.activity.clone();
    let client = conn.client;
    // One per-connection Arc for what every request needs: cloning the
    // process-wide Arcs per request would bounce their counts between cores.
    let served = Arc::new((shared, metrics.clone(), conn));
    let read = if h2 {
        Bytes::new()
    } else {
        let lean = h1_server::serve(&mut io, limits, &drain, |req| {
            let (shared, metrics, conn) = &*served;
            forward::handle(shared, metrics, conn, req)
        });
        let ended = tokio::select! {
            // The requests first; no random pick on every wake-up.
            biased;
            ended = lean => ended,
            () = activity.idle(limits.idle_timeout) => {
                metrics.reject(Rejection::IdleTimeout);
                tracing::debug!(%client, "idle connection closed");
                return;
            }
        };
        match ended {
            Ok(Ended::Handoff(read)) => read,
            Ok(Ended::Closed) => return,
            Ok(Ended::TimedOut) => {
                metrics.reject(Rejection::HeaderReadTimeout);
                tracing::debug!(%client, "request head not received in time");
                return;
            }
            Err(err) => {
                tracing::debug!(%client, error = %err, "connection ended with an error");
                return;
            }
        }
    };
    // HTTP/2's preface goes to the auto builder, which reads it.
    let h2 = h2 || read.starts_with(b"PRI ");
    serve_hyper(Rewind::new(read, io), h2, served, limits, metrics, drain).await;
}

/// Serves the rest of a connection with hyper: HTTP/2, and HTTP/1.1
/// requests the lean server does not take.
async fn serve_hyper<I>(
    io: I,
    h2: bool,
    served: Arc<(SharedGateway, Arc<Metrics>, Conn)>,
    limits: &Limits,
    metrics: &Arc<Metrics>,
    drain: Watch,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = served.2.activity.clone();
    let client = served.2.client;
    let service = service_fn(move |req: Request<Incoming>| {
        let served = served.clone();
        async move {
            let (shared, metrics, conn) = &*served;
            // HTTP/1.1 bodies hyper decodes (chunked ones) may be
            // malformed: told apart from a client gone, see `Checked`.
            let checked = req.version() == Version::HTTP_11 && !req.body().is_end_stream();
            let req = req.map(|body| Checked::new(body, checked.then(|| metrics.clone())));
            let (mut response, more) = forward::handle(shared, metrics, conn, req).await;
            more.insert_into(response.headers_mut());
            Ok::<_, Infallible>(response)
        }
    });
    let io = TokioIo::new(io);
    let ended = if h2 {
        let builder = auto_builder(limits);
        let connection = builder.serve_connection_with_upgrades(io, service);
        drive(
            connection,
            |c| c.graceful_shutdown(),
            &activity,
            limits,
            &drain,
        )
        .await
    } else {
        let connection = h1_builder(limits)
            .serve_connection(io, service)
            .with_upgrades();
        drive(
            connection,
            |c| c.graceful_shutdown(),
            &activity,
            limits,
            &drain,
        )
        .await
    };
    match ended {
        Outcome::Done => {}
        Outcome::Failed(err) => {
            if let Some(why) = classify(err.as_ref(), activity.unanswered()) {
                metrics.reject(why);
            }
            tracing::debug!(%client, error = %err, "connection ended with an error");
        }
        Outcome::Idle => {
            metrics.reject(Rejection::IdleTimeout);
            tracing::debug!(%client, "idle connection closed");
        }
    }
}

/// How a hyper connection ended.
enum Outcome {
    Done,
    Failed(BoxError),
    Idle,
}

/// Runs a hyper `connection` until it ends, draining begins (it then
/// finishes its requests: `graceful`), or it stays idle too long.
async fn drive<C, E>(
    connection: C,
    graceful: fn(Pin<&mut C>),
    activity: &Activity,
    limits: &Limits,
    drain: &Watch,
) -> Outcome
where
    C: Future<Output = Result<(), E>>,
    E: Into<BoxError>,
{
    tokio::pin!(connection);
    let serving = async {
        tokio::select! {
            result = connection.as_mut() => result,
            () = drain.signalled() => {
                graceful(connection.as_mut());
                connection.as_mut().await
            }
        }
    };
    tokio::select! {
        result = serving => match result {
            Ok(()) => Outcome::Done,
            Err(err) => Outcome::Failed(err.into()),
        },
        () = activity.idle(limits.idle_timeout) => Outcome::Idle,
    }
}

/// The rejection a connection error stands for, if any.
fn classify(err: &(dyn std::error::Error + 'static), unanswered: bool) -> Option<Rejection> {
    let hyper = err.downcast_ref::<hyper::Error>()?;
    if hyper.is_parse_too_large() {
        Some(Rejection::HeaderTooLarge)
    } else if hyper.is_timeout() {
        Some(if unanswered {
            Rejection::HeaderReadTimeout
        } else {
            Rejection::IdleTimeout
        })
    } else if hyper.is_parse() {
        Some(Rejection::BadRequest)
    } else {
        None
    }
}
