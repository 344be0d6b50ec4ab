//! Connection-level protection that hyper does not provide by itself: an
//! idle timeout that never cuts a request in flight, and the in-flight
//! count it relies on. (Header size/count and the header read timeout are
//! hyper settings, see `server`; the body limit is in `forward`.)

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// When a connection last moved bytes, and how many requests it has open.
pub struct Activity {
    origin: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// Bytes arrived since the last response ended: a request is being sent.
    unanswered: AtomicBool,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            unanswered: AtomicBool::new(false),
        })
    }

    fn touch(&self) {
        let now = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// True when the client sent part of a request that got no answer yet:
    /// a header read timeout then is a slow client, not an idle one.
    pub fn unanswered(&self) -> bool {
        self.unanswered.load(Ordering::Relaxed)
    }

    /// Marks a request as in flight until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Some(self.clone()))
    }

    /// Resolves once the connection has had no traffic and no request in
    /// flight for `timeout`.
    pub async fn idle(&self, timeout: Duration) {
        loop {
            let last = self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + timeout;
            if Instant::now() >= deadline {
                if self.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                tokio::time::sleep(timeout).await;
            } else {
                tokio::time::sleep_until(deadline.into()).await;
            }
        }
    }
}

/// A request in flight on a connection.
pub struct InFlight(Option<Arc<Activity>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(a) = self.0.take() {
            a.touch();
            a.unanswered.store(false, Ordering::Relaxed);
            a.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A stream that records its activity.
pub struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Tracked<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        activity.touch();
        Tracked { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
            self.activity.unanswered.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
