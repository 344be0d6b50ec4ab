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

/// hyper's longest request target (it answers 414 above): a longer one
/// goes to hyper, whatever the head limit allows.
const MAX_TARGET: usize = u16::MAX as usize - 1;

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

/// What the lean server decides on the bytes read so far, as `read` does
/// after each read (the fuzz targets' view of `parse`).
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// A head it serves: its length, its body's, and whether the client
    /// asked to close.
    Serve {
        head_len: usize,
        body_len: usize,
        close: bool,
    },
    /// More bytes are needed.
    Partial,
    /// hyper serves it (or refuses it).
    Handoff,
}

pub fn verdict(buf: &[u8], limits: &Limits) -> Verdict {
    match parse(buf, &mut Vec::new(), limits) {
        Parse::Complete(head) => Verdict::Serve {
            head_len: head.len,
            body_len: head.body_len,
            close: head.close,
        },
        Parse::Partial if buf.len() >= limits.max_header_bytes => Verdict::Handoff,
        Parse::Partial => Verdict::Partial,
        Parse::Handoff => Verdict::Handoff,
    }
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
        // Over the limit however it arrived (in one read or many): hyper
        // answers 431 (see `server::h1_builder`).
        Ok(httparse::Status::Complete(len)) if len > limits.max_header_bytes => {
            return Parse::Handoff;
        }
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parse::Partial,
        // Too many headers, or malformed: hyper answers 431 or 400.
        Err(_) => return Parse::Handoff,
    };
    // HTTP/1.0 keep-alive rules and absolute-form targets stay with hyper.
    let (Some(1), Some(method), Some(path)) = (req.version, req.method, req.path) else {
        return Parse::Handoff;
    };
    if !path.starts_with('/') || path.len() > MAX_TARGET {
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
    use std::{
        collections::VecDeque,
        io::ErrorKind,
        pin::Pin,
        task::{Context, Poll},
    };

    use tokio::io::ReadBuf;

    use super::*;

    /// The head limit of these tests (the smallest the configuration takes).
    const LIMIT: usize = 8 * 1024;

    fn limits() -> Limits {
        Limits {
            max_header_bytes: LIMIT,
            max_headers: 100,
            header_read_timeout: std::time::Duration::from_secs(10),
            max_body_bytes: 10 * 1024 * 1024,
            idle_timeout: std::time::Duration::from_secs(60),
            max_connections: 10,
            listen_backlog: 128,
            cache_memory_bytes: 1 << 20,
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

    /// A connection that delivers `pieces`, one per read (cut to the
    /// reader's room), then end of stream.
    struct Pieces(VecDeque<Vec<u8>>);

    impl Pieces {
        fn rest(&self) -> Vec<u8> {
            self.0.iter().flatten().copied().collect()
        }
    }

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            out: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            while let Some(mut piece) = self.0.pop_front() {
                if piece.is_empty() {
                    continue;
                }
                let n = piece.len().min(out.remaining());
                out.put_slice(&piece[..n]);
                let rest = piece.split_off(n);
                if !rest.is_empty() {
                    self.0.push_front(rest);
                }
                break;
            }
            Poll::Ready(Ok(()))
        }
    }

    /// What the reader made of the bytes: the request it read (with the
    /// bytes left after it), a handoff to hyper, or an error.
    #[derive(Debug, PartialEq)]
    enum Verdict {
        Request {
            method: String,
            uri: String,
            headers: Vec<(String, Vec<u8>)>,
            body: Vec<u8>,
            close: bool,
            rest: Vec<u8>,
        },
        Handoff,
        Closed,
        Failed(ErrorKind),
    }

    fn read_pieces(pieces: &[&[u8]], limits: &Limits) -> Verdict {
        let all: Vec<u8> = pieces.concat();
        let mut io = Pieces(pieces.iter().map(|p| p.to_vec()).collect());
        let drain = super::super::super::drain::Drain::default();
        let watch = drain.watch();
        let mut buf = BytesMut::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let read = runtime.block_on(read(&mut io, &mut buf, &mut Vec::new(), limits, &watch));
        let mut unread = buf.to_vec();
        unread.extend(io.rest());
        match read {
            Ok(Read::Request(req, close)) => {
                let (parts, body) = req.into_parts();
                let body = runtime
                    .block_on(http_body_util::BodyExt::collect(body))
                    .unwrap()
                    .to_bytes();
                Verdict::Request {
                    method: parts.method.to_string(),
                    uri: parts.uri.to_string(),
                    headers: parts
                        .headers
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                        .collect(),
                    body: body.to_vec(),
                    close,
                    rest: unread,
                }
            }
            Ok(Read::Handoff) => {
                // hyper is given every byte: none consumed, none lost.
                assert_eq!(unread, all, "a handoff keeps the bytes read");
                Verdict::Handoff
            }
            Ok(Read::Closed) => Verdict::Closed,
            Ok(Read::TimedOut) => panic!("nothing waits here"),
            Err(e) => Verdict::Failed(e.kind()),
        }
    }

    /// The verdict on `raw` read whole, which reading it in two pieces
    /// split at every index (and byte by byte, for a short one) gives too.
    fn read_split(raw: &[u8], limits: &Limits) -> Verdict {
        let whole = read_pieces(&[raw], limits);
        for split in 0..=raw.len() {
            let (a, b) = raw.split_at(split);
            assert_eq!(
                read_pieces(&[a, b], limits),
                whole,
                "split at {split} of {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(200)])
            );
        }
        if raw.len() <= 512 {
            let bytes: Vec<&[u8]> = raw.chunks(1).collect();
            assert_eq!(read_pieces(&bytes, limits), whole, "byte by byte");
        }
        whole
    }

    #[test]
    fn the_head_reader_gives_one_verdict_whatever_the_reads() {
        let limits = limits();
        let served = [
            &b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
            // Pipelined: the next request stays in the buffer.
            b"POST /1 HTTP/1.1\r\nContent-Length: 2\r\n\r\nokGET /2 HTTP/1.1\r\n\r\n",
            b"POST /1 HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
            // A bare LF ends a line for hyper (httparse) too (RFC 9112 2.2);
            // the backend gets the head rewritten with CRLF.
            b"GET / HTTP/1.1\nHost: x\n\n",
        ];
        for raw in served {
            let verdict = read_split(raw, &limits);
            assert!(
                matches!(verdict, Verdict::Request { .. }),
                "{:?}: {verdict:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let Verdict::Request { body, rest, .. } = read_split(served[4], &limits) else {
            unreachable!()
        };
        assert_eq!(
            (&body[..], &rest[..]),
            (&b"ok"[..], &b"GET /2 HTTP/1.1\r\n\r\n"[..])
        );

        let handed_off = [
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding:\tchunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
            b"GET /a<b HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: 1\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ];
        for raw in handed_off {
            assert_eq!(
                read_split(raw, &limits),
                Verdict::Handoff,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        // A head, or a body, cut by the client.
        for raw in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel",
        ] {
            assert_eq!(
                read_split(raw, &limits),
                Verdict::Failed(ErrorKind::UnexpectedEof)
            );
        }
        assert_eq!(read_split(b"", &limits), Verdict::Closed);
    }

    /// A request head of exactly `len` bytes.
    fn head_of(len: usize) -> Vec<u8> {
        let start = b"GET / HTTP/1.1\r\nX-Pad: ";
        let end = b"\r\n\r\n";
        let mut raw = start.to_vec();
        raw.resize(len - end.len(), b'p');
        raw.extend_from_slice(end);
        raw
    }

    #[test]
    fn a_target_longer_than_hyper_takes_goes_to_hyper() {
        let mut big = limits();
        big.max_header_bytes = 80 * 1024;
        let request = |len: usize| format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(len - 1));
        for (len, served) in [(MAX_TARGET, true), (MAX_TARGET + 1, false)] {
            let verdict = super::verdict(request(len).as_bytes(), &big);
            assert_eq!(
                matches!(verdict, super::Verdict::Serve { .. }),
                served,
                "{len}"
            );
        }
    }

    #[test]
    fn the_head_limit_is_exact_whatever_the_reads() {
        let limits = limits();
        for (len, served) in [
            (LIMIT - 1, true),
            (LIMIT, true),
            (LIMIT + 1, false),
            (LIMIT + 8 * 1024, false),
            (2 * LIMIT - 1, false),
            (3 * LIMIT, false),
        ] {
            let raw = head_of(len);
            let verdict = read_split(&raw, &limits);
            assert_eq!(
                matches!(verdict, Verdict::Request { .. }),
                served,
                "a head of {len} bytes with a limit of {LIMIT}: {verdict:?}"
            );
            if !served {
                assert_eq!(verdict, Verdict::Handoff, "hyper answers 431");
            }
        }
    }
}
