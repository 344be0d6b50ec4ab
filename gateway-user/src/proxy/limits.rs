//! Connection-level protection that hyper does not provide by itself: an
//! idle timeout that never cuts a request in flight, and the in-flight
//! count it relies on. (Header size/count and the header read timeout are
//! enforced by `h1_server` and by hyper's settings, see `server`; the body
//! limit is in `forward`.)

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Whether a connection moved bytes lately, and how many requests it has
/// open. Traffic only sets a flag (no clock read per read or write); the
/// idle checker samples and clears it.
pub struct Activity {
    /// Set by traffic and by the end of a request; cleared by `idle`.
    active: AtomicBool,
    in_flight: AtomicUsize,
    /// Bytes arrived since the last response ended: a request is being sent.
    unanswered: AtomicBool,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            active: AtomicBool::new(true),
            in_flight: AtomicUsize::new(0),
            unanswered: AtomicBool::new(false),
        })
    }

    fn touch(&self) {
        self.active.store(true, Ordering::Relaxed);
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
    /// flight for `timeout`, give or take a quarter: the flag is sampled
    /// every quarter of `timeout` (each sample up to `deadline::TICK`
    /// late), and four quiet samples in a row end it, between 1 and 1.25
    /// `timeout` after the last byte.
    pub async fn idle(&self, timeout: Duration) {
        const SAMPLES: u32 = 4;
        let quarter = (timeout / SAMPLES).max(Duration::from_millis(1));
        let mut quiet = 0;
        loop {
            // A deadline slot, not a tokio interval: this future is polled
            // on every wake-up of its connection, and checking a slot costs
            // a small fraction of polling a timer.
            let _ = super::deadline::within(quarter, std::future::pending::<()>()).await;
            let busy = self.active.swap(false, Ordering::Relaxed)
                || self.in_flight.load(Ordering::Acquire) > 0;
            quiet = if busy { 0 } else { quiet + 1 };
            if quiet >= SAMPLES {
                return;
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

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(200);

    /// Whether `idle` resolves within `within`.
    async fn idles(a: &Activity, within: Duration) -> bool {
        tokio::time::timeout(within, a.idle(TIMEOUT)).await.is_ok()
    }

    #[tokio::test]
    async fn a_request_in_flight_is_never_idle_its_end_restarts_the_wait() {
        let a = Activity::new();
        let request = a.begin();
        assert!(!idles(&a, TIMEOUT * 4).await, "a request is in flight");
        drop(request);
        assert!(
            idles(&a, TIMEOUT * 10).await,
            "nothing in flight, no traffic"
        );
    }

    #[tokio::test]
    async fn traffic_keeps_a_connection_alive_silence_ends_it() {
        let a = Activity::new();
        let traffic = async {
            for _ in 0..16 {
                tokio::time::sleep(TIMEOUT / 4).await;
                a.touch();
            }
        };
        tokio::select! {
            () = a.idle(TIMEOUT) => panic!("closed while bytes were moving"),
            () = traffic => {}
        }
        assert!(idles(&a, TIMEOUT * 10).await);
    }
}
