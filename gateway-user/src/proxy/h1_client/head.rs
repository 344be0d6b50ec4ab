//! HTTP/1.1 message heads to and from a backend: the request head written
//! into one buffer (one write), and the response head parsed in place with
//! its header values sharing the read buffer (no copy per header).

use std::{io::Write, mem::MaybeUninit};

use bytes::{Buf, BytesMut};
use hyper::{
    HeaderMap, Method, Response, StatusCode, Version,
    body::Body,
    header::{self, HeaderValue},
    http::response::Parts,
};

use crate::proxy::{
    RequestBody,
    headers::{Added, line},
};

/// Most response headers accepted from a backend.
const MAX_HEADERS: usize = 128;

/// How a response body is delimited (RFC 9112 section 6.3), and whether
/// the connection can carry another request after it.
#[derive(Debug, PartialEq)]
pub struct Framing {
    pub kind: Kind,
    pub reuse: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

pub enum Parsed {
    Complete(Parts, Framing),
    /// A 1xx answer was consumed; the real one follows.
    Informational,
    Partial,
}

/// The request head: the client's headers, then the ones the proxy sets
/// (`added`, in place of the client's of the same name). The body's framing
/// is chosen here: the client's own `Content-Length` / `Transfer-Encoding`
/// described bytes hyper already decoded, so they are never copied through.
/// `Expect` is not sent: the proxy has the body, or reads it as it goes.
pub fn request(
    method: &Method,
    target: &str,
    host: &str,
    headers: &HeaderMap,
    added: &Added,
    body: &RequestBody,
) -> Vec<u8> {
    let mut out = crate::proxy::spare::buffer(128 + headers.len() * 48);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        let name = name.as_str();
        if matches!(
            name,
            "host" | "content-length" | "transfer-encoding" | "expect"
        ) || added.replaces(name)
        {
            continue;
        }
        line(&mut out, name.as_bytes(), value.as_bytes());
    }
    added.write(headers, &mut out);
    if body.is_end_stream() {
        if !matches!(
            *method,
            Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS | Method::TRACE
        ) {
            out.extend_from_slice(b"content-length: 0\r\n");
        }
    } else if let Some(n) = body.size_hint().exact() {
        let _ = write!(out, "content-length: {n}\r\n");
    } else {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Parses a response head at the start of `buf` and consumes it.
pub fn response(buf: &mut BytesMut, head_request: bool) -> Result<Parsed, String> {
    // Left uninitialised: the parser writes the slots it fills.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let parser = httparse::ParserConfig::default();
    let len = match parser.parse_response_with_uninit_headers(&mut parsed, buf, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
        Err(e) => return Err(format!("the backend's response head is malformed: {e}")),
    };
    let code = parsed.code.unwrap_or_default();
    if code == 101 {
        return Err("the backend switched protocols without being asked to".into());
    }
    if (100..200).contains(&code) {
        buf.advance(len);
        return Ok(Parsed::Informational);
    }
    let status =
        StatusCode::from_u16(code).map_err(|_| format!("the backend answered status {code}"))?;
    let version = match parsed.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    // Header values are kept as ranges of the head, then cut from it once
    // it is frozen: they share its memory.
    let base = buf.as_ptr() as usize;
    let mut spans = Vec::with_capacity(parsed.headers.len());
    let (mut close, mut coded) = (false, false);
    for h in parsed.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            let mut named = false;
            for token in h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                close |= token.eq_ignore_ascii_case(b"close");
                named |= !(token.is_empty()
                    || token.eq_ignore_ascii_case(b"close")
                    || token.eq_ignore_ascii_case(b"keep-alive"));
            }
            // `keep-alive` / `close` concern this hop alone: read here, not
            // kept. One naming other headers stays for the proxy to strip
            // them (`headers::strip_hop_by_hop`).
            if !named {
                continue;
            }
        }
        let name = crate::proxy::names::parse(h.name.as_bytes())
            .ok_or_else(|| format!("the backend sent an invalid header name {:?}", h.name))?;
        coded |= name == header::TRANSFER_ENCODING;
        let start = h.value.as_ptr() as usize - base;
        spans.push((name, start, start + h.value.len()));
    }
    let head = buf.split_to(len).freeze();
    // Room for the headers the gateway adds (`X-Request-Id`, policies').
    let mut headers = crate::proxy::spare::header_map(spans.len() + 4);
    for (name, start, end) in spans {
        let value = HeaderValue::from_maybe_shared(head.slice(start..end))
            .map_err(|_| format!("the backend sent an invalid value for {name}"))?;
        headers.append(name, value);
    }
    let (mut parts, ()) = Response::new(()).into_parts();
    parts.status = status;
    parts.version = version;
    parts.headers = headers;
    let framing = framing(&parts, head_request, close, coded)?;
    if coded {
        // RFC 9112 6.3: a Content-Length next to a transfer coding is
        // removed before the message is forwarded.
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    Ok(Parsed::Complete(parts, framing))
}

/// `coded`: the head has a `Transfer-Encoding`.
fn framing(parts: &Parts, head_request: bool, close: bool, coded: bool) -> Result<Framing, String> {
    let mut reuse = parts.version == Version::HTTP_11 && !close;
    let h = &parts.headers;
    if head_request || matches!(parts.status.as_u16(), 204 | 304) {
        return Ok(Framing {
            kind: Kind::Empty,
            reuse,
        });
    }
    if coded {
        // Both framings at once is how smuggling starts: the transfer
        // coding wins (RFC 9112 6.3) and the connection is not reused.
        if h.contains_key(header::CONTENT_LENGTH) {
            reuse = false;
        }
        let chunked = h
            .get_all(header::TRANSFER_ENCODING)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("chunked"));
        return Ok(if chunked {
            Framing {
                kind: Kind::Chunked,
                reuse,
            }
        } else {
            Framing {
                kind: Kind::UntilClose,
                reuse: false,
            }
        });
    }
    let mut length = None;
    for v in h.get_all(header::CONTENT_LENGTH) {
        for part in v.as_bytes().split(|&b| b == b',') {
            let digits = part.trim_ascii();
            let n = (!digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(digits).ok()?.parse::<u64>().ok())
                .flatten()
                .ok_or("the backend sent an invalid Content-Length")?;
            if length.is_some_and(|l| l != n) {
                return Err("the backend sent conflicting Content-Length values".into());
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(n) => Framing {
            kind: Kind::Length(n),
            reuse,
        },
        None => Framing {
            kind: Kind::UntilClose,
            reuse: false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str, head_request: bool) -> Result<(Parts, Framing, BytesMut), String> {
        let mut buf = BytesMut::from(raw);
        loop {
            match response(&mut buf, head_request)? {
                Parsed::Complete(parts, framing) => return Ok((parts, framing, buf)),
                Parsed::Informational => continue,
                Parsed::Partial => return Err("partial".into()),
            }
        }
    }

    fn kind(raw: &str) -> Result<Framing, String> {
        parse(raw, false).map(|(_, f, _)| f)
    }

    #[test]
    fn parses_a_head_and_leaves_the_body_in_the_buffer() {
        let (parts, framing, rest) = parse(
            "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: 1\r\nX-A: 2\r\n\r\nhello",
            false,
        )
        .unwrap();
        assert_eq!(parts.status, 201);
        let all: Vec<_> = parts.headers.get_all("x-a").iter().collect();
        assert_eq!(all, ["1", "2"]);
        assert_eq!(
            framing,
            Framing {
                kind: Kind::Length(5),
                reuse: true
            }
        );
        assert_eq!(&rest[..], b"hello");
    }

    #[test]
    fn skips_informational_answers_and_waits_for_a_whole_head() {
        let (parts, ..) = parse(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
            false,
        )
        .unwrap();
        assert_eq!(parts.status, 200);
        assert!(matches!(
            response(&mut BytesMut::from("HTTP/1.1 200 OK\r\nA: b\r\n"), false),
            Ok(Parsed::Partial)
        ));
    }

    #[test]
    fn chooses_the_framing_rfc_9112_prescribes() {
        let te_and_cl =
            kind("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(
            te_and_cl.unwrap(),
            Framing {
                kind: Kind::Chunked,
                reuse: false
            }
        );
        let (parts, ..) = parse(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            false,
        )
        .unwrap();
        assert!(parts.headers.get("content-length").is_none());
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")
                .unwrap()
                .kind,
            Kind::UntilClose
        );
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\n\r\n").unwrap(),
            Framing {
                kind: Kind::UntilClose,
                reuse: false
            }
        );
        assert_eq!(
            kind("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n\r\n")
                .unwrap()
                .kind,
            Kind::Length(7)
        );
        assert!(
            !kind("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n")
                .unwrap()
                .reuse
        );
        assert!(
            !kind("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n")
                .unwrap()
                .reuse
        );
        assert_eq!(
            kind("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n")
                .unwrap()
                .kind,
            Kind::Empty
        );
        let head = parse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true)
            .unwrap()
            .1;
        assert_eq!(head.kind, Kind::Empty);
    }

    #[test]
    fn connection_is_read_here_and_kept_only_when_it_names_headers() {
        let (parts, framing, _) = parse(
            "HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .unwrap();
        assert!(framing.reuse);
        assert!(!parts.headers.contains_key("connection"));
        let (parts, framing, _) = parse(
            "HTTP/1.1 200 OK\r\nConnection: close, x-secret\r\nX-Secret: 1\r\nContent-Length: 0\r\n\r\n",
            false,
        )
        .unwrap();
        assert!(!framing.reuse);
        assert_eq!(parts.headers["connection"], "close, x-secret");
    }

    #[test]
    fn refuses_ambiguous_or_malformed_heads() {
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n",
            "NOTHTTP 200\r\n\r\n",
        ] {
            assert!(kind(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn request_heads_set_their_own_framing_and_the_proxy_headers() {
        use crate::proxy::headers::{ClientIp, Trace};
        use http_body_util::{BodyExt, Empty, Full};
        let mut headers = HeaderMap::new();
        headers.insert("content-length", HeaderValue::from_static("999"));
        headers.insert("x-keep", HeaderValue::from_static("yes"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("192.0.2.1"));
        headers.insert("expect", HeaderValue::from_static("100-continue"));
        let trace = Trace::continue_or_start(&HeaderMap::new());
        let added = Added::new(
            ClientIp::new("10.0.0.2".parse().unwrap()),
            "http",
            None,
            &trace,
        );
        let boxed = |b: Full<bytes::Bytes>| b.map_err(|never| match never {}).boxed_unsync();
        let sized = request(
            &Method::POST,
            "/a?b",
            "h:1",
            &headers,
            &added,
            &boxed(Full::new("abc".into())),
        );
        let traceparent = trace.header();
        assert_eq!(
            String::from_utf8(sized).unwrap(),
            format!(
                "POST /a?b HTTP/1.1\r\nhost: h:1\r\nx-keep: yes\r\n\
                 x-forwarded-for: 192.0.2.1, 10.0.0.2\r\nx-forwarded-proto: http\r\n\
                 forwarded: for=10.0.0.2;proto=http\r\ntraceparent: {}\r\n\
                 content-length: 3\r\n\r\n",
                traceparent.to_str().unwrap()
            )
        );
        let empty = Empty::new().map_err(|never| match never {}).boxed_unsync();
        let get = request(&Method::GET, "/", "h", &HeaderMap::new(), &added, &empty);
        assert!(
            String::from_utf8(get)
                .unwrap()
                .starts_with("GET / HTTP/1.1\r\nhost: h\r\nx-forwarded-for: ")
        );
    }

    /// What parsing a response head gives: the answer's status, headers,
    /// framing and the bytes after it, or the error.
    #[derive(Debug, PartialEq)]
    enum Verdict {
        Head {
            status: u16,
            version: Version,
            headers: Vec<(String, Vec<u8>)>,
            framing: Framing,
            rest: Vec<u8>,
        },
        Incomplete,
        Refused(String),
    }

    /// Feeds `pieces` one at a time, as reads would, parsing after each.
    fn parse_pieces(pieces: &[&[u8]], head_request: bool) -> Verdict {
        let mut buf = BytesMut::new();
        for (i, piece) in pieces.iter().enumerate() {
            buf.extend_from_slice(piece);
            loop {
                match response(&mut buf, head_request) {
                    Err(e) => return Verdict::Refused(e),
                    Ok(Parsed::Informational) => continue,
                    Ok(Parsed::Partial) => break,
                    Ok(Parsed::Complete(parts, framing)) => {
                        let mut rest = buf.to_vec();
                        rest.extend(pieces[i + 1..].concat());
                        return Verdict::Head {
                            status: parts.status.as_u16(),
                            version: parts.version,
                            headers: parts
                                .headers
                                .iter()
                                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                                .collect(),
                            framing,
                            rest,
                        };
                    }
                }
            }
        }
        Verdict::Incomplete
    }

    /// The verdict on `raw` whole, which every split in two and byte by
    /// byte reads give too.
    fn parse_split(raw: &[u8], head_request: bool) -> Verdict {
        let whole = parse_pieces(&[raw], head_request);
        for split in 0..=raw.len() {
            let (a, b) = raw.split_at(split);
            assert_eq!(
                parse_pieces(&[a, b], head_request),
                whole,
                "split at {split}: {:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let bytes: Vec<&[u8]> = raw.chunks(1).collect();
        assert_eq!(parse_pieces(&bytes, head_request), whole, "byte by byte");
        whole
    }

    #[test]
    fn the_response_head_parser_gives_one_verdict_whatever_the_reads() {
        let length = |n| Framing {
            kind: Kind::Length(n),
            reuse: true,
        };
        for (raw, framing, rest) in [
            (&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"[..], length(2), &b"ok"[..]),
            (
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                length(0),
                b"",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                Framing {
                    kind: Kind::Chunked,
                    reuse: true,
                },
                b"2\r\nok\r\n0\r\n\r\n",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
                Framing {
                    kind: Kind::Chunked,
                    reuse: false,
                },
                b"",
            ),
            (
                b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
                Framing {
                    kind: Kind::Length(1),
                    reuse: false,
                },
                b"x",
            ),
            (
                b"HTTP/1.1 200 OK\r\n\r\nuntil close",
                Framing {
                    kind: Kind::UntilClose,
                    reuse: false,
                },
                b"until close",
            ),
            (
                b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
                Framing {
                    kind: Kind::Empty,
                    reuse: true,
                },
                b"",
            ),
            (
                b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
                length(1),
                b"x",
            ),
        ] {
            match parse_split(raw, false) {
                Verdict::Head {
                    framing: f,
                    rest: r,
                    ..
                } => {
                    assert_eq!((f, &r[..]), (framing, rest), "{:?}", String::from_utf8_lossy(raw));
                }
                other => panic!("{:?}: {other:?}", String::from_utf8_lossy(raw)),
            }
        }
        for raw in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/2 200\r\n\r\n",
            b"NOTHTTP 200\r\n\r\n",
        ] {
            assert!(
                matches!(parse_split(raw, false), Verdict::Refused(_)),
                "{:?} must be refused",
                String::from_utf8_lossy(raw)
            );
        }
        assert_eq!(
            parse_split(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", false),
            Verdict::Incomplete
        );
    }
}
