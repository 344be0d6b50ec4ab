//! HTTP/1.1 request bodies hyper decodes when the lean server hands it a
//! connection (chunked or large bodies). A body that fails to decode (a
//! malformed chunked coding: a bad size, a chunk longer than its size, a
//! missing CRLF, a bad extension) is told apart from a client that went
//! away: it is counted and fails as `MalformedBody`, which the backend
//! clients turn into `BackendError::BadRequestBody` (400 to the client,
//! the backend connection closed, never reused).

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::super::BoxError;
use crate::admin::{Metrics, Rejection};

/// The client's request body could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MalformedBody(pub String);

/// A request body whose decoding errors are classified (see the module)
/// when it has `metrics` to count them in; passed through otherwise
/// (HTTP/2 bodies, which have no transfer coding).
pub struct Checked<B> {
    inner: B,
    metrics: Option<Arc<Metrics>>,
}

impl<B> Checked<B> {
    pub fn new(inner: B, metrics: Option<Arc<Metrics>>) -> Checked<B> {
        Checked { inner, metrics }
    }
}

impl<B> Body for Checked<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => {
                let e: BoxError = e.into();
                let Some(metrics) = &self.metrics else {
                    return Poll::Ready(Some(Err(e)));
                };
                Poll::Ready(Some(Err(match malformed(e.as_ref()) {
                    Some(why) => {
                        metrics.reject(Rejection::BadBody);
                        Box::new(MalformedBody(why))
                    }
                    None => e,
                })))
            }
            other => other.map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What is wrong with the body, when the error says it could not be
/// decoded. hyper's decoder reports bad framing as `InvalidInput` or
/// `InvalidData`; a client that closed early is `UnexpectedEof`.
fn malformed(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = Some(e);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
            )
        {
            return Some(io.to_string());
        }
        source = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::io::{Error, ErrorKind};

    use super::*;

    #[test]
    fn decoding_errors_are_told_from_a_client_gone() {
        #[derive(Debug, thiserror::Error)]
        #[error("reading the body")]
        struct Wrapper(#[source] Error);
        let bad = Wrapper(Error::new(ErrorKind::InvalidInput, "invalid chunk size"));
        assert_eq!(malformed(&bad).as_deref(), Some("invalid chunk size"));
        let data = Error::new(ErrorKind::InvalidData, "invalid chunk body LF");
        assert!(malformed(&data).is_some());
        let gone = Wrapper(Error::new(ErrorKind::UnexpectedEof, "early eof"));
        assert_eq!(malformed(&gone), None);
    }
}
