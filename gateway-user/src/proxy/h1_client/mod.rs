//! A lean HTTP/1.1 client for HTTP/1.1 backends (plain or TLS). The request's own task
//! writes the request and reads the response head on a pooled connection
//! (no connection task, no channels between them), and the response body
//! (`body`) reads the rest and gives the connection back to its worker
//! thread's `pool` when the exchange ended cleanly. hyper-util's client
//! still serves HTTP/2 backends and upgrades (see `backend`).

mod body;
pub mod chunked;
pub(super) mod head;
mod pool;
mod stream;

pub use body::BackendBody;
pub use pool::{Local, Pool, Shared};
pub use stream::Dialer;

use std::time::Duration;

use hyper::{HeaderMap, Method, Response, body::Body};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{RequestBody, backend_error::BackendError, headers::Added};
use head::Framing;
use pool::Conn;

/// The largest response head accepted from a backend.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Sends one request and returns the response once its head arrived; its
/// body fails if the backend then stays silent for `read_timeout`.
/// A pooled connection the backend closed while idle is detected when
/// nothing at all comes back; an idempotent request without a body is then
/// sent again on a new connection (a body stream cannot be replayed, and a
/// POST may have been acted on before the connection died).
pub async fn send(
    pool: &std::sync::Arc<Local>,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    added: &Added,
    body: RequestBody,
    read_timeout: Duration,
) -> Result<Response<BackendBody>, BackendError> {
    let empty = body.is_end_stream();
    let replayable = empty && method.is_idempotent();
    let head = head::request(method, target, pool.host(), headers, added, &body);
    let mut body = (!empty).then_some(body);
    let answer = loop {
        let (conn, reused) = match pool.checkout() {
            Some(conn) => (conn, true),
            // Boxed: dialing's state (over 1 KiB) would otherwise be part
            // of, and copied with, every request's future.
            None => match Box::pin(pool.connect()).await {
                Ok(conn) => (conn, false),
                Err(e) => break Err(e),
            },
        };
        match exchange(conn, &head, body.take(), method == Method::HEAD).await {
            Err(Exchange::Stale) if reused && replayable => continue,
            Err(Exchange::Stale) => {
                break Err(BackendError::Failed(
                    "the backend closed the connection without answering".into(),
                ));
            }
            Err(Exchange::Failed(e)) => break Err(e),
            Ok((parts, framing, conn)) => {
                let body = BackendBody::new(conn, framing, pool.clone(), read_timeout);
                break Ok(Response::from_parts(parts, body));
            }
        }
    };
    super::spare::give_back_buffer(head);
    answer
}

enum Exchange {
    /// Nothing was read back: the connection was closed under us.
    Stale,
    Failed(BackendError),
}

impl From<std::io::Error> for Exchange {
    fn from(e: std::io::Error) -> Self {
        Exchange::Failed(BackendError::Failed(e.into()))
    }
}

async fn exchange(
    mut conn: Conn,
    head: &[u8],
    body: Option<RequestBody>,
    head_request: bool,
) -> Result<(hyper::http::response::Parts, Framing, Conn), Exchange> {
    // A backend may answer early (a 503, a 413) and close without reading
    // the whole body: its answer is still read, on a connection that is
    // then not reused.
    // TLS may hold the last record back until flushed.
    let mut cut_short = None;
    match body {
        None => {
            let stream = &mut conn.stream;
            let sent = async {
                stream.write_all(head).await?;
                stream.flush().await
            };
            if sent.await.is_err() {
                return Err(Exchange::Stale);
            }
        }
        Some(body) => match body::write_request(&mut conn.stream, head, body).await {
            Ok(()) => conn.stream.flush().await?,
            // The backend has part of a request: its connection is
            // closed here (dropped), never reused.
            Err(body::WriteError::Body(e)) => return Err(Exchange::Failed(e)),
            Err(body::WriteError::Backend(e)) => cut_short = Some(e),
        },
    }
    match read_head(&mut conn, head_request).await {
        Ok((parts, mut framing)) => {
            framing.reuse &= cut_short.is_none();
            Ok((parts, framing, conn))
        }
        Err(_) if let Some(e) = cut_short => Err(e.into()),
        Err(e) => Err(e),
    }
}

async fn read_head(
    conn: &mut Conn,
    head_request: bool,
) -> Result<(hyper::http::response::Parts, Framing), Exchange> {
    let mut read_any = false;
    loop {
        if !conn.buf.is_empty() {
            match head::response(&mut conn.buf, head_request)
                .map_err(|e| Exchange::Failed(BackendError::Failed(e.into())))?
            {
                head::Parsed::Complete(parts, framing) => return Ok((parts, framing)),
                head::Parsed::Informational => continue,
                head::Parsed::Partial => {}
            }
            if conn.buf.len() >= MAX_HEAD_BYTES {
                return Err(Exchange::Failed(BackendError::Failed(
                    format!("the backend's response head is over {MAX_HEAD_BYTES} bytes").into(),
                )));
            }
        }
        conn.buf.reserve(8 * 1024);
        let n = match conn.stream.read_buf(&mut conn.buf).await {
            Ok(n) => n,
            Err(_) if !read_any => return Err(Exchange::Stale),
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Err(if read_any {
                Exchange::Failed(BackendError::Failed(
                    "the backend closed the connection in the response head".into(),
                ))
            } else {
                Exchange::Stale
            });
        }
        read_any = true;
    }
}
