//! Bodies on a backend connection: the request body written with the
//! framing its head announced, and the response body read with the framing
//! its head announced (length, chunked with trailers, or until close). A
//! response read to its end on a reusable connection hands the connection
//! back to the pool.

use std::{
    future::Future,
    io::Write,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use tokio::{
    io::{AsyncRead, AsyncWriteExt, ReadBuf},
    time::{Instant, Sleep},
};

use super::{
    chunked::{Decoder, Step},
    head::{Framing, Kind},
    pool::{Conn, Local},
    stream::Stream,
};
use crate::proxy::{BoxError, RequestBody, backend_error::BackendError, h1_server::MalformedBody};

/// Why a request could not be written whole.
pub enum WriteError {
    /// The backend stopped taking bytes; it may still have answered.
    Backend(std::io::Error),
    /// The body itself failed: over the limit, cut by the client, or not
    /// the length it announced.
    Body(BackendError),
}

/// Writes the request `head`, then `body` with the framing `head::request`
/// chose for it (exact length when known, chunked otherwise). The head
/// goes out with the first piece of the body: one write, one segment.
pub async fn write_request(
    stream: &mut Stream,
    head: &[u8],
    mut body: RequestBody,
) -> Result<(), WriteError> {
    let chunked = body.size_hint().exact().is_none();
    let mut declared = body.size_hint().exact();
    let mut out = head.to_vec();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| WriteError::Body(body_error(e)))?;
        let Ok(data) = frame.into_data() else {
            // Trailers are not forwarded to HTTP/1.1 backends.
            continue;
        };
        if data.is_empty() {
            continue;
        }
        if chunked {
            let _ = write!(out, "{:x}\r\n", data.len());
            out.extend_from_slice(&data);
            out.extend_from_slice(b"\r\n");
        } else {
            let left = declared.unwrap_or(0);
            if data.len() as u64 > left {
                return Err(WriteError::Body(BackendError::Failed(
                    "the request body is longer than its Content-Length".into(),
                )));
            }
            declared = Some(left - data.len() as u64);
            out.extend_from_slice(&data);
        }
        stream.write_all(&out).await.map_err(WriteError::Backend)?;
        out.clear();
    }
    if chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    } else if declared != Some(0) {
        return Err(WriteError::Body(BackendError::Failed(
            "the request body is shorter than its Content-Length".into(),
        )));
    }
    if !out.is_empty() {
        stream.write_all(&out).await.map_err(WriteError::Backend)?;
    }
    Ok(())
}

/// The request body's own error: over the size limit, malformed, or the
/// client's.
fn body_error(e: BoxError) -> BackendError {
    if e.is::<http_body_util::LengthLimitError>() {
        BackendError::BodyTooLarge
    } else if e.is::<MalformedBody>() {
        BackendError::BadRequestBody(e)
    } else {
        BackendError::Failed(e)
    }
}

/// A response body being read from a backend connection.
pub struct BackendBody {
    conn: Option<Conn>,
    state: State,
    reuse: bool,
    pool: Arc<Local>,
    /// A backend silent this long mid-body is cut off.
    read_timeout: Duration,
    /// Armed only while a read waits (most bodies arrive with their head).
    stall: Option<Pin<Box<Sleep>>>,
    /// Bytes arrived since `stall` was armed: re-arm it before waiting.
    progressed: bool,
}

enum State {
    /// Bytes left of a `Content-Length` body.
    Length(u64),
    Chunked(Decoder),
    UntilClose,
    Done,
}

impl BackendBody {
    pub fn new(
        conn: Conn,
        framing: Framing,
        pool: Arc<Local>,
        read_timeout: Duration,
    ) -> BackendBody {
        let state = match framing.kind {
            Kind::Empty | Kind::Length(0) => State::Done,
            Kind::Length(n) => State::Length(n),
            Kind::Chunked => State::Chunked(Decoder::new()),
            Kind::UntilClose => State::UntilClose,
        };
        BackendBody {
            conn: Some(conn),
            state,
            reuse: framing.reuse,
            pool,
            read_timeout,
            stall: None,
            progressed: false,
        }
    }

    /// Reads more from the backend; `Ok(0)` is end of stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        if conn.buf.capacity() - conn.buf.len() < 4 * 1024 {
            conn.buf.reserve(16 * 1024);
        }
        let len = conn.buf.len();
        let mut read = ReadBuf::uninit(conn.buf.spare_capacity_mut());
        if Pin::new(&mut conn.stream)
            .poll_read(cx, &mut read)?
            .is_pending()
        {
            let deadline = Instant::now() + self.read_timeout;
            let stall = self
                .stall
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if std::mem::take(&mut self.progressed) {
                stall.as_mut().reset(deadline);
            }
            ready!(stall.as_mut().poll(cx));
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the backend sent nothing for {:?}", self.read_timeout),
            )));
        }
        let n = read.filled().len();
        // SAFETY: `poll_read` initialised the first `n` bytes of the spare
        // capacity it was given.
        unsafe { conn.buf.set_len(len + n) };
        self.progressed = true;
        Poll::Ready(Ok(n))
    }

    fn buf(&mut self) -> &mut bytes::BytesMut {
        &mut self
            .conn
            .as_mut()
            .expect("a body being read has its connection")
            .buf
    }

    /// Up to `left` bytes already read, or `None` when more must be read.
    fn take(&mut self, left: u64) -> Option<Bytes> {
        let buf = self.buf();
        if buf.is_empty() {
            return None;
        }
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        Some(buf.split_to(n).freeze())
    }

    fn fail(&mut self, why: &str) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.state = State::Done;
        self.reuse = false;
        Poll::Ready(Some(Err(why.to_string().into())))
    }
}

impl Body for BackendBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Length(left) => {
                    let left = *left;
                    if let Some(data) = this.take(left) {
                        let left = left - data.len() as u64;
                        this.state = if left == 0 {
                            State::Done
                        } else {
                            State::Length(left)
                        };
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                State::UntilClose => {
                    if let Some(data) = this.take(u64::MAX) {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                }
                State::Chunked(decoder) => {
                    let buf = &mut this
                        .conn
                        .as_mut()
                        .expect("a body being read has its connection")
                        .buf;
                    match decoder.step(buf) {
                        Ok(Some(Step::Framing(n))) => {
                            buf.advance(n);
                            continue;
                        }
                        Ok(Some(Step::Data(n))) => {
                            return Poll::Ready(Some(Ok(Frame::data(buf.split_to(n).freeze()))));
                        }
                        Ok(Some(Step::End(n, trailers))) => {
                            buf.advance(n);
                            this.state = State::Done;
                            return Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))));
                        }
                        Ok(None) => {}
                        Err(e) => {
                            return this
                                .fail(&format!("the backend's chunked body is malformed: {e}"));
                        }
                    }
                }
            }
            match ready!(this.poll_fill(cx)) {
                Ok(0) if matches!(this.state, State::UntilClose) => {
                    this.state = State::Done;
                    this.reuse = false;
                    return Poll::Ready(None);
                }
                Ok(0) => return this.fail("the backend closed the connection mid-body"),
                Ok(_) => {}
                Err(e) => {
                    this.state = State::Done;
                    this.reuse = false;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            State::Done => SizeHint::with_exact(0),
            State::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

impl Drop for BackendBody {
    fn drop(&mut self) {
        // Only a body read to its end, with nothing unexpected after it,
        // leaves the connection ready for the next request.
        if let Some(conn) = self.conn.take()
            && self.reuse
            && matches!(self.state, State::Done)
            && conn.buf.is_empty()
        {
            self.pool.put(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;

    use super::{super::pool, *};

    /// What reading a response body gave, and whether its connection went
    /// back to the pool.
    #[derive(Debug, PartialEq)]
    struct Read {
        data: Vec<u8>,
        trailers: bool,
        failed: bool,
        reused: bool,
    }

    /// Reads a body framed by `kind` (`reuse`: what its head allowed) whose
    /// first `split` bytes came with the head and the rest from the socket,
    /// the backend closing after them when `close`.
    async fn read_body(kind: Kind, reuse: bool, wire: &[u8], split: usize, close: bool) -> Read {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared =
            pool::Shared::new(pool::Pool::new(&addr, None, Duration::from_secs(5)).unwrap());
        let local = shared.local().clone();
        let mut conn = local.connect().await.unwrap();
        let (mut backend, _) = listener.accept().await.unwrap();
        conn.buf.extend_from_slice(&wire[..split]);
        backend.write_all(&wire[split..]).await.unwrap();
        if close {
            drop(backend);
        } else {
            // Kept open past the read.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(30)).await;
                drop(backend);
            });
        }
        let mut body = BackendBody::new(
            conn,
            Framing { kind, reuse },
            local.clone(),
            Duration::from_secs(5),
        );
        let mut read = Read {
            data: Vec::new(),
            trailers: false,
            failed: false,
            reused: false,
        };
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) if frame.is_trailers() => read.trailers = true,
                Ok(frame) => read.data.extend_from_slice(&frame.into_data().unwrap()),
                Err(_) => {
                    read.failed = true;
                    break;
                }
            }
        }
        assert!(body.is_end_stream(), "ended, one way or the other");
        drop(body);
        // As between requests: the reactor sees what arrived meanwhile.
        tokio::task::yield_now().await;
        read.reused = local.checkout().is_some();
        read
    }

    #[tokio::test]
    async fn a_connection_is_reused_only_after_a_clean_end_at_every_split() {
        struct Case {
            kind: Kind,
            reuse: bool,
            wire: &'static [u8],
            close: bool,
            data: &'static [u8],
            trailers: bool,
            failed: bool,
            reused: bool,
        }
        let ok = |kind, wire, data| Case {
            kind,
            reuse: true,
            wire,
            close: false,
            data,
            trailers: false,
            failed: false,
            reused: true,
        };
        let cases = [
            ok(Kind::Length(5), b"hello", b"hello"),
            ok(
                Kind::Chunked,
                b"2\r\nhe\r\n3;x=\"y\"\r\nllo\r\n0\r\n\r\n",
                b"hello",
            ),
            Case {
                trailers: true,
                ..ok(
                    Kind::Chunked,
                    b"5\r\nhello\r\n0\r\nGrpc-Status: 0\r\n\r\n",
                    b"hello",
                )
            },
            // The head said the connection closes after this answer.
            Case {
                reuse: false,
                reused: false,
                ..ok(Kind::Length(5), b"hello", b"hello")
            },
            // Bytes after the end: nobody asked for them.
            Case {
                reused: false,
                ..ok(Kind::Length(5), b"helloX", b"hello")
            },
            Case {
                reused: false,
                ..ok(Kind::Chunked, b"5\r\nhello\r\n0\r\n\r\nX", b"hello")
            },
            // Until close: read whole, never reused.
            Case {
                close: true,
                reused: false,
                ..ok(Kind::UntilClose, b"all of it", b"all of it")
            },
            // Early close: shorter than its length, a chunk or a trailer
            // section cut.
            Case {
                close: true,
                failed: true,
                reused: false,
                ..ok(Kind::Length(5), b"hel", b"hel")
            },
            Case {
                close: true,
                failed: true,
                reused: false,
                ..ok(Kind::Chunked, b"5\r\nhel", b"hel")
            },
            Case {
                close: true,
                failed: true,
                reused: false,
                ..ok(Kind::Chunked, b"5\r\nhello\r\n0\r\nX: 1\r\n", b"hello")
            },
            // Malformed: overlong size, a chunk longer than its size, bad
            // extension, bare LF.
            Case {
                failed: true,
                reused: false,
                ..ok(
                    Kind::Chunked,
                    b"00000000000000005\r\nhello\r\n0\r\n\r\n",
                    b"",
                )
            },
            Case {
                failed: true,
                reused: false,
                ..ok(Kind::Chunked, b"3\r\nhello\r\n0\r\n\r\n", b"hel")
            },
            Case {
                failed: true,
                reused: false,
                ..ok(Kind::Chunked, b"5;a b\r\nhello\r\n0\r\n\r\n", b"")
            },
            Case {
                failed: true,
                reused: false,
                ..ok(Kind::Chunked, b"5\nhello\r\n0\r\n\r\n", b"")
            },
        ];
        for c in &cases {
            let want = Read {
                data: c.data.to_vec(),
                trailers: c.trailers,
                failed: c.failed,
                reused: c.reused,
            };
            for split in 0..=c.wire.len() {
                let got = read_body(c.kind, c.reuse, c.wire, split, c.close).await;
                assert_eq!(
                    got,
                    want,
                    "{:?} split at {split}",
                    String::from_utf8_lossy(c.wire)
                );
            }
        }
    }

    /// Bytes a backend sends while its connection idles in the pool, after
    /// an answer that ended cleanly (a stray byte, or an answer nobody
    /// asked for): the connection is never used again, or the next
    /// request would read them as its response.
    #[tokio::test]
    async fn stray_bytes_while_idle_keep_a_pooled_connection_out_of_use() {
        for stray in [&b"X"[..], b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let shared =
                pool::Shared::new(pool::Pool::new(&addr, None, Duration::from_secs(5)).unwrap());
            let local = shared.local().clone();
            let conn = local.connect().await.unwrap();
            let (mut backend, _) = listener.accept().await.unwrap();
            backend.write_all(b"hello").await.unwrap();
            let framing = Framing {
                kind: Kind::Length(5),
                reuse: true,
            };
            let body = BackendBody::new(conn, framing, local.clone(), Duration::from_secs(5));
            let data = body.collect().await.unwrap().to_bytes();
            assert_eq!(&data[..], b"hello");
            // A clean end: pooled, and still usable while nothing arrives.
            tokio::task::yield_now().await;
            let conn = local.checkout().expect("a clean end pools the connection");
            local.put(conn);

            backend.write_all(stray).await.unwrap();
            // Until the reactor has seen them (loopback: at once, but a
            // test does not count on timing): then checkout drops it.
            let mut reused = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                match local.checkout() {
                    None => break,
                    Some(conn) => {
                        reused += 1;
                        assert!(reused < 500, "{stray:?}: still handed out after 5 s");
                        local.put(conn);
                    }
                }
            }
            assert!(local.checkout().is_none(), "{stray:?}: dropped, not kept");
        }
    }
}
