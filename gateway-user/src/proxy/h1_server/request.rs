//! Reading one request off the client connection: its head, parsed in
//! place with header values sharing the read buffer, and its body when it
//! is small and length-delimited. Parsing stops at the first sign that the
//! request needs hyper (see the module's documentation).

use std::{mem::MaybeUninit, pin::pin};

use bytes::{Bytes, BytesMut};
use http_body_util::Full;
use hyper::{
    Method, Request, Uri, Version,
    header::{HeaderName, HeaderValue},
};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::super::drain::Watch;
use crate::config::Limits;

/// The largest body read here before calling the handler; a longer one is
/// streamed by hyper.
const MAX_BODY: u64 = 64 * 1024;

/// hyper's own header count limit: the slots live on the stack up to it.
const STACK_HEADERS: usize = 100;

/// What came off the connection.
#[expect(
    clippy::large_enum_variant,
    reason = "one per request, moved once: boxing would add an allocation"
)]
pub enum Read {
    /// A request this server answers; `close` when the client asked for it.
    Request(Request<Full<Bytes>>, bool),
    /// Not for this server: hyper serves the connection from the bytes
    /// still in the buffer on.
    Handoff,
    /// The client closed the connection, or draining began, between requests.
    Closed,
    /// The head (or small body) did not arrive within the header read timeout.
    TimedOut,
}

/// Reads the next request. Waiting for its first byte is bounded by the
/// connection's idle timeout (see `limits`); once it has begun, the rest
/// must arrive within the header read timeout (slow clients).
pub async fn read<I: AsyncRead + Unpin>(
    io: &mut I,
    buf: &mut BytesMut,
    spans: &mut Vec<Span>,
    limits: &Limits,
    drain: &Watch,
) -> std::io::Result<Read> {
    // A timer only for a request split over several reads.
    let mut deadline = None;
    let head = loop {
        if !buf.is_empty() {
            match parse(buf, spans, limits) {
                Parse::Complete(head) => break head,
                Parse::Handoff => return Ok(Read::Handoff),
                // hyper answers 431 for the head over the limit.
                Parse::Partial if buf.len() >= limits.max_header_bytes => {
                    return Ok(Read::Handoff);
                }
                Parse::Partial => {}
            }
        }
        if buf.is_empty() {
            tokio::select! {
                biased;
                read = fill(io, buf) => if read? == 0 {
                    return Ok(Read::Closed);
                },
                () = drain.signalled() => return Ok(Read::Closed),
            }
        } else if !wait_for_more(io, buf, &mut deadline, limits).await? {
            return Ok(Read::TimedOut);
        }
    };
    let Head {
        len,
        body_len,
        close,
        method,
        target,
    } = head;
    let head_bytes = buf.split_to(len).freeze();
    let Some(request) = build(&head_bytes, spans, method, target) else {
        // A target or value httparse accepts and `http` refuses (`/a<b`):
        // hyper answers it, from the whole head put back (a rare copy).
        let mut all = BytesMut::from(&head_bytes[..]);
        all.extend_from_slice(buf);
        *buf = all;
        return Ok(Read::Handoff);
    };
    while buf.len() < body_len {
        if !wait_for_more(io, buf, &mut deadline, limits).await? {
            return Ok(Read::TimedOut);
        }
    }
    let body = buf.split_to(body_len).freeze();
    let (parts, ()) = request.into_parts();
    Ok(Read::Request(
        Request::from_parts(parts, Full::new(body)),
        close,
    ))
}

/// Reads more of a request that has begun; false when the header read
/// timeout ran out first.
async fn wait_for_more<I: AsyncRead + Unpin>(
    io: &mut I,
    buf: &mut BytesMut,
    deadline: &mut Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    limits: &Limits,
) -> std::io::Result<bool> {
    let timer =
        deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(limits.header_read_timeout)));
    tokio::select! {
        read = fill(io, buf) => {
            if read? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            Ok(true)
        }
        () = timer.as_mut() => Ok(false),
    }
}

async fn fill<I: AsyncRead + Unpin>(io: &mut I, buf: &mut BytesMut) -> std::io::Result<usize> {
    buf.reserve(8 * 1024);
    pin!(io.read_buf(buf)).await
}

/// A header of the head being parsed: its name, and where its value lies.
pub struct Span {
    name: HeaderName,
    start: usize,
    end: usize,
}

struct Head {
    len: usize,
    body_len: usize,
    close: bool,
    method: Method,
    target: (usize, usize),
}

enum Parse {
    Complete(Head),
    Partial,
    Handoff,
}

fn parse(buf: &[u8], spans: &mut Vec<Span>, limits: &Limits) -> Parse {
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots = if limits.max_headers <= STACK_HEADERS {
        &mut stack[..limits.max_headers]
    } else {
        heap.resize_with(limits.max_headers, MaybeUninit::uninit);
        &mut heap[..]
    };
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parse::Partial,
        // Too many headers, or malformed: hyper answers 431 or 400.
        Err(_) => return Parse::Handoff,
    };
    // HTTP/1.0 keep-alive rules and absolute-form targets stay with hyper.
    let (Some(1), Some(method), Some(path)) = (req.version, req.method, req.path) else {
        return Parse::Handoff;
    };
    if !path.starts_with('/') {
        return Parse::Handoff;
    }
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Parse::Handoff;
    };
    let base = buf.as_ptr() as usize;
    let offset = |s: &[u8]| s.as_ptr() as usize - base;
    let mut body_len = None;
    let mut close = false;
    spans.clear();
    for h in req.headers.iter() {
        let Some(name) = super::super::names::parse(h.name.as_bytes()) else {
            return Parse::Handoff;
        };
        match name.as_str() {
            "content-length" => {
                // One plain decimal length, small enough to read here.
                let n = std::str::from_utf8(h.value)
                    .ok()
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<u64>().ok());
                match (n, body_len) {
                    (Some(n), None) if n <= MAX_BODY && n <= limits.max_body_bytes => {
                        body_len = Some(n as usize);
                    }
                    _ => return Parse::Handoff,
                }
            }
            "connection" => {
                for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"upgrade") {
                        return Parse::Handoff;
                    }
                }
            }
            "transfer-encoding" | "expect" | "upgrade" => return Parse::Handoff,
            _ => {}
        }
        let start = offset(h.value);
        spans.push(Span {
            name,
            start,
            end: start + h.value.len(),
        });
    }
    let start = offset(path.as_bytes());
    Parse::Complete(Head {
        len,
        body_len: body_len.unwrap_or(0),
        close,
        method,
        target: (start, start + path.len()),
    })
}

/// The request, its target and header values cut from the frozen head.
fn build(
    head: &Bytes,
    spans: &mut Vec<Span>,
    method: Method,
    target: (usize, usize),
) -> Option<Request<()>> {
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.1)).ok()?;
    // Room for a couple that policies may add (the proxy's own go apart,
    // see `headers::Added`).
    let mut headers = super::super::spare::header_map(spans.len() + 2);
    for Span { name, start, end } in spans.drain(..) {
        headers.append(
            name,
            HeaderValue::from_maybe_shared(head.slice(start..end)).ok()?,
        );
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Some(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            header_read_timeout: std::time::Duration::from_secs(10),
            max_body_bytes: 10 * 1024 * 1024,
            idle_timeout: std::time::Duration::from_secs(60),
            max_connections: 10,
        }
    }

    fn parsed(raw: &[u8]) -> Parse {
        parse(raw, &mut Vec::new(), &limits())
    }

    #[test]
    fn common_requests_are_served_here() {
        for raw in [
            &b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            b"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n",
        ] {
            assert!(matches!(parsed(raw), Parse::Complete(_)), "{raw:?}");
        }
        let Parse::Complete(head) = parsed(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n") else {
            panic!("complete");
        };
        assert!(head.close);
        assert!(matches!(
            parsed(b"GET / HTTP/1.1\r\nHost: x\r\n"),
            Parse::Partial
        ));
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        for raw in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header: v\r\n\r\n",
            b"GARBAGE\r\n\r\n",
            big.as_bytes(),
        ] {
            assert!(
                matches!(parsed(raw), Parse::Handoff),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn more_headers_than_the_limit_go_to_hyper() {
        let mut small = limits();
        small.max_headers = 2;
        let raw = b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n";
        assert!(matches!(
            parse(raw, &mut Vec::new(), &small),
            Parse::Handoff
        ));
        small.max_headers = 3;
        assert!(matches!(
            parse(raw, &mut Vec::new(), &small),
            Parse::Complete(_)
        ));
    }
}
