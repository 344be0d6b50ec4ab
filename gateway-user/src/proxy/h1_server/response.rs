//! Writing a response to the client: the head encoded into one buffer with
//! the body's framing (its exact length when known, chunked otherwise),
//! and the body's pieces added to that buffer while they are ready, so
//! that a small response leaves in one write and a streamed one is sent
//! as it comes.

use std::{
    cell::RefCell,
    io::Write,
    pin::Pin,
    task::{Context, Poll, Waker},
    time::SystemTime,
};

use bytes::Bytes;
use hyper::{
    HeaderMap, Response, StatusCode,
    body::{Body, Frame},
};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::super::headers::line;

/// Buffered output is written once it reaches this size; a larger piece
/// of body is written from its own memory.
const COALESCE: usize = 16 * 1024;

/// Header lines a handler has the writer add after the response's own:
/// they need not be hashed into its map first.
pub trait MoreHeaders {
    /// Whether the response's own header `name` gives way to these.
    fn replaces(&self, name: &str) -> bool;
    /// Each name and value, in order.
    fn each(&self, f: &mut dyn FnMut(&[u8], &[u8]));
}

/// None.
impl MoreHeaders for () {
    fn replaces(&self, _: &str) -> bool {
        false
    }
    fn each(&self, _: &mut dyn FnMut(&[u8], &[u8])) {}
}

/// Writes `response` with `more` headers; an error means the connection
/// cannot carry another response (the client went away, or the body
/// failed midway).
pub async fn write<I, B>(
    io: &mut I,
    response: Response<B>,
    more: &impl MoreHeaders,
    head_request: bool,
    close: bool,
    out: &mut Vec<u8>,
) -> std::io::Result<()>
where
    I: AsyncWrite + Unpin,
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let (parts, mut body) = response.into_parts();
    let status = parts.status;
    let bodiless = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if bodiless {
        Framing::None
    } else {
        match body.size_hint().exact() {
            Some(n) => Framing::Length(n),
            None => Framing::Chunked,
        }
    };
    out.clear();
    head(out, status, &parts.headers, more, &framing, close);
    super::super::spare::give_back_map(parts.headers);
    if bodiless {
        // A HEAD answer keeps the length the backend gave.
        return io.write_all(out).await;
    }
    let mut sent = 0u64;
    let mut trailers = None;
    loop {
        let frame = match ready_frame(&mut body) {
            Some(frame) => frame,
            None => {
                // Nothing more for now: what is buffered goes out first.
                flush(io, out).await?;
                std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
            }
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => {
                return Err(std::io::Error::other(format!(
                    "the response body failed: {e}"
                )));
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    trailers = frame.into_trailers().ok();
                    continue;
                }
            },
        };
        if data.is_empty() {
            continue;
        }
        sent += data.len() as u64;
        if let Framing::Chunked = framing {
            let _ = write!(out, "{:x}\r\n", data.len());
        }
        if data.len() <= COALESCE {
            out.extend_from_slice(&data);
        } else {
            flush(io, out).await?;
            io.write_all(&data).await?;
        }
        if let Framing::Chunked = framing {
            out.extend_from_slice(b"\r\n");
        }
        if out.len() >= COALESCE {
            flush(io, out).await?;
        }
    }
    match framing {
        Framing::Chunked => {
            out.extend_from_slice(b"0\r\n");
            for (name, value) in trailers.iter().flatten() {
                line(out, name.as_str().as_bytes(), value.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
        // The client would wait for bytes that never come: end the
        // connection instead.
        Framing::Length(n) if n != sent => {
            return Err(std::io::Error::other(format!(
                "the response body ended after {sent} of {n} bytes"
            )));
        }
        _ => {}
    }
    flush(io, out).await
}

enum Framing {
    None,
    Length(u64),
    Chunked,
}

fn head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    more: &impl MoreHeaders,
    framing: &Framing,
    close: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut dated = false;
    for (name, value) in headers {
        // The framing written below replaces any the handler left; hop-by-hop
        // headers were removed on the way (see `headers`).
        let name = name.as_str();
        match name {
            "content-length" | "transfer-encoding" if !matches!(framing, Framing::None) => continue,
            "connection" => continue,
            "date" => dated = true,
            _ if more.replaces(name) => continue,
            _ => {}
        }
        line(out, name.as_bytes(), value.as_bytes());
    }
    more.each(&mut |name, value| line(out, name, value));
    if !dated {
        date(out);
    }
    match framing {
        Framing::Length(n) => {
            line(
                out,
                b"content-length",
                itoa::Buffer::new().format(*n).as_bytes(),
            );
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::None => {}
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// What polling a body gives: a frame, an error, or its end.
type Polled<B> = Option<Result<Frame<<B as Body>::Data>, <B as Body>::Error>>;

/// The next frame if the body has it at hand, without waiting.
fn ready_frame<B: Body + Unpin>(body: &mut B) -> Option<Polled<B>> {
    match Pin::new(body).poll_frame(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(frame) => Some(frame),
        Poll::Pending => None,
    }
}

async fn flush<I: AsyncWrite + Unpin>(io: &mut I, out: &mut Vec<u8>) -> std::io::Result<()> {
    if !out.is_empty() {
        io.write_all(out).await?;
        out.clear();
    }
    Ok(())
}

thread_local! {
    /// `date: <IMF-fixdate>\r\n` and the coarse second it was made for.
    static DATE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

/// Appends the `Date` header (RFC 9110 6.6.1), formatted once a second.
fn date(out: &mut Vec<u8>) {
    let second = crate::clock::coarse_monotonic().as_secs();
    DATE.with_borrow_mut(|(made, line)| {
        if *made != second {
            *made = second;
            line.clear();
            let _ = write!(
                line,
                "date: {}\r\n",
                httpdate::fmt_http_date(SystemTime::now())
            );
        }
        out.extend_from_slice(line);
    });
}

#[cfg(test)]
mod tests {
    use http_body_util::Full;
    use hyper::header;

    use super::*;

    async fn written<B>(response: Response<B>, head_request: bool, close: bool) -> String
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let mut wire = Vec::new();
        write(
            &mut wire,
            response,
            &(),
            head_request,
            close,
            &mut Vec::new(),
        )
        .await
        .unwrap();
        let text = String::from_utf8(wire).unwrap();
        // The date changes; everything else is exact.
        let date = text.find("date: ").unwrap();
        let end = date + text[date..].find("\r\n").unwrap() + 2;
        format!("{}{}", &text[..date], &text[end..])
    }

    #[tokio::test]
    async fn a_known_length_is_sent_as_content_length() {
        let mut response = Response::new(Full::new(Bytes::from_static(b"hello")));
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, "99".parse().unwrap());
        assert_eq!(
            written(response, false, false).await,
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"
        );
    }

    #[tokio::test]
    async fn an_unknown_length_is_chunked_with_trailers_and_close_is_said() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        let response = Response::new(Frames(
            [
                Frame::data(Bytes::from_static(b"abc")),
                Frame::data(Bytes::from_static(b"0123456789abcdef!")),
                Frame::trailers(trailers),
            ]
            .into(),
        ));
        assert_eq!(
            written(response, false, true).await,
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n\
             3\r\nabc\r\n11\r\n0123456789abcdef!\r\n0\r\ngrpc-status: 0\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn head_and_204_answers_have_no_body() {
        let mut response = Response::new(Full::new(Bytes::new()));
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, "42".parse().unwrap());
        assert_eq!(
            written(response, true, false).await,
            "HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n"
        );
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NO_CONTENT;
        assert_eq!(
            written(response, false, false).await,
            "HTTP/1.1 204 No Content\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn a_body_shorter_than_its_length_fails_the_connection() {
        struct Short;
        impl Body for Short {
            type Data = Bytes;
            type Error = std::convert::Infallible;
            fn poll_frame(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
                Poll::Ready(None)
            }
            fn size_hint(&self) -> hyper::body::SizeHint {
                hyper::body::SizeHint::with_exact(10)
            }
        }
        let mut wire = Vec::new();
        let result = write(
            &mut wire,
            Response::new(Short),
            &(),
            false,
            false,
            &mut Vec::new(),
        )
        .await;
        assert!(result.is_err());
    }

    /// A body of the given frames, of unknown length.
    struct Frames(std::collections::VecDeque<Frame<Bytes>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
    }
}
