//! The hand-written HTTP/1.1 parsers, reachable by the fuzz targets under
//! `fuzz/`: not an API. Each takes bytes as a connection delivers them.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Request, http::response::Parts};
use tokio::io::AsyncReadExt;

use super::{drain::Drain, h1_client::head, h1_server::request};
use crate::config::Limits;

pub use super::canonical::{Canonical, PathError, canonical};
pub use super::h1_client::chunked::{ChunkError, Decoder, Step};
pub use super::h1_server::request::Verdict as LeanVerdict;

/// The process limits with a head limit of `max_header_bytes` (at least
/// 8192, as the configuration requires) and the defaults otherwise.
pub fn limits(max_header_bytes: usize) -> Limits {
    Limits {
        max_header_bytes: max_header_bytes.max(8192),
        max_headers: 100,
        header_read_timeout: std::time::Duration::from_secs(10),
        max_body_bytes: 10 * 1024 * 1024,
        idle_timeout: std::time::Duration::from_secs(60),
        max_connections: 10,
        listen_backlog: 128,
        cache_memory_bytes: 1 << 20,
    }
}

/// What the lean server decides on the bytes read so far (as it does after
/// each read).
pub fn lean_head(buf: &[u8], limits: &Limits) -> LeanVerdict {
    request::verdict(buf, limits)
}

/// The request the lean server reads and serves when `first` then
/// `second` arrive, each in one read, then end of stream; `None` when it
/// hands the connection to hyper, or the bytes end first.
pub fn lean_read(first: &[u8], second: &[u8], limits: &Limits) -> Option<Request<Bytes>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let drain = Drain::default();
        let watch = drain.watch();
        let mut io = first.chain(second);
        let mut buf = bytes::BytesMut::new();
        let read = request::read(&mut io, &mut buf, &mut Vec::new(), limits, &watch).await;
        match read {
            Ok(request::Read::Request(req, _)) => {
                let (parts, body) = req.into_parts();
                let body = body.collect().await.ok()?.to_bytes();
                Some(Request::from_parts(parts, body))
            }
            _ => None,
        }
    })
}

/// The backend's response head at the start of `buf` (after any 1xx
/// answers): its parts, framing (`Debug`-printed) and the bytes it used;
/// `Ok(None)` while incomplete.
pub fn response_head(
    buf: &[u8],
    head_request: bool,
) -> Result<Option<(Parts, String, usize)>, String> {
    let mut buf = bytes::BytesMut::from(buf);
    let len = buf.len();
    loop {
        match head::response(&mut buf, head_request)? {
            head::Parsed::Complete(parts, framing) => {
                return Ok(Some((parts, format!("{framing:?}"), len - buf.len())));
            }
            head::Parsed::Informational => continue,
            head::Parsed::Partial => return Ok(None),
        }
    }
}
