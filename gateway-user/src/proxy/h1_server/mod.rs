//! A lean HTTP/1.1 server for the requests nearly every client sends: a
//! head with no body, or a small one with a `Content-Length`. The
//! connection's own task parses the request (`request`), calls the handler
//! and writes the answer (`response`, one write for a small one), without
//! hyper's dispatcher, body channel, per-request timer and clock reads.
//!
//! Anything else (an upgrade, `Expect`, a chunked or large body, HTTP/1.0,
//! HTTP/2's preface, a malformed or oversized head) is handed, with the
//! bytes already read (`Rewind`), to hyper, which serves the rest of that
//! connection: the rare cases keep hyper's tested behaviour, errors
//! included.

mod body;
pub(super) mod request;
mod response;
mod rewind;

pub use body::{Checked, MalformedBody};
pub use response::MoreHeaders;
pub use rewind::Rewind;

use std::future::Future;

use bytes::{Bytes, BytesMut};
use http_body_util::Full;
use hyper::{Method, Request, Response, body::Body};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::drain::Watch;
use crate::config::Limits;

/// How the lean server stopped.
pub enum Ended {
    Closed,
    /// A request head did not arrive whole in time.
    TimedOut,
    /// hyper takes over, starting with these bytes.
    Handoff(Bytes),
}

/// Serves requests on `io` with `handle` until the connection closes,
/// draining begins, or a request needs hyper. The handler gives the
/// response and headers to add to it as it is written.
pub async fn serve<I, H, F, B, M>(
    io: &mut I,
    limits: &Limits,
    drain: &Watch,
    mut handle: H,
) -> std::io::Result<Ended>
where
    I: AsyncRead + AsyncWrite + Unpin,
    H: FnMut(Request<Full<Bytes>>) -> F,
    F: Future<Output = (Response<B>, M)>,
    M: MoreHeaders,
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut buf = BytesMut::new();
    let mut spans = Vec::new();
    let mut out = Vec::with_capacity(4 * 1024);
    loop {
        let (req, asked_close) =
            match request::read(io, &mut buf, &mut spans, limits, drain).await? {
                request::Read::Request(req, close) => (req, close),
                request::Read::Handoff => return Ok(Ended::Handoff(buf.freeze())),
                request::Read::Closed => return Ok(Ended::Closed),
                request::Read::TimedOut => return Ok(Ended::TimedOut),
            };
        let head_request = req.method() == Method::HEAD;
        let (response, more) = handle(req).await;
        // Draining: this answer is the connection's last.
        let close = asked_close || drain.draining();
        response::write(io, response, &more, head_request, close, &mut out).await?;
        if close {
            let _ = io.shutdown().await;
            return Ok(Ended::Closed);
        }
    }
}
