//! Graceful shutdown of the client connections: once draining starts, each
//! connection finishes the request it is serving and closes, and the
//! server waits until none is left. A connection checks the signal on
//! every wake-up, so checking costs one atomic load and a waker
//! registration, not a lock (hyper-util's watcher locks a list each time).

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::Poll,
};

use atomic_waker::AtomicWaker;
use tokio::sync::Notify;

#[derive(Default)]
struct Inner {
    draining: AtomicBool,
    next_id: AtomicU64,
    /// The wakers of the open connections, by id.
    open: Mutex<HashMap<u64, Arc<AtomicWaker>>>,
    /// Notified when the last connection closes.
    none_left: Notify,
}

/// The server's side: hands out a `Watch` per connection, starts draining.
#[derive(Default)]
pub struct Drain(Arc<Inner>);

/// A connection's side; dropping it marks the connection closed.
pub struct Watch {
    inner: Arc<Inner>,
    id: u64,
    waker: Arc<AtomicWaker>,
}

impl Drain {
    pub fn watch(&self) -> Watch {
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
        let waker = Arc::new(AtomicWaker::new());
        lock(&self.0.open).insert(id, waker.clone());
        Watch {
            inner: self.0.clone(),
            id,
            waker,
        }
    }

    /// Connections still open.
    pub fn open(&self) -> usize {
        lock(&self.0.open).len()
    }

    /// Signals every connection, then resolves once all have closed.
    pub async fn shutdown(&self) {
        self.0.draining.store(true, Ordering::SeqCst);
        for waker in lock(&self.0.open).values() {
            waker.wake();
        }
        loop {
            let none_left = self.0.none_left.notified();
            tokio::pin!(none_left);
            none_left.as_mut().enable();
            if lock(&self.0.open).is_empty() {
                return;
            }
            none_left.await;
        }
    }
}

impl Watch {
    pub fn draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Resolves once draining has started.
    pub fn signalled(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            self.waker.register(cx.waker());
            if self.draining() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut open = lock(&self.inner.open);
        open.remove(&self.id);
        if open.is_empty() {
            self.inner.none_left.notify_waiters();
        }
    }
}

/// The map stays consistent whatever panicked while holding it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn shutdown_signals_every_connection_and_waits_for_the_last() {
        let drain = Arc::new(Drain::default());
        let (a, b) = (drain.watch(), drain.watch());
        assert_eq!(drain.open(), 2);
        let waiter = {
            let drain = drain.clone();
            tokio::spawn(async move { drain.shutdown().await })
        };
        // Both see the signal; the server keeps waiting while one is open.
        tokio::time::timeout(Duration::from_secs(5), a.signalled())
            .await
            .expect("signalled");
        assert!(b.draining());
        drop(a);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "one connection is still open");
        drop(b);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("shutdown ends once none is left")
            .unwrap();
    }

    #[tokio::test]
    async fn shutdown_with_no_connection_returns_at_once() {
        tokio::time::timeout(Duration::from_secs(5), Drain::default().shutdown())
            .await
            .expect("nothing to wait for");
    }
}
