//! Idle connections to one backend, kept per worker thread: a connection
//! is only reused by the thread (and runtime) that opened it, so taking
//! and returning one is a plain `VecDeque` operation, with no lock.

use std::{cell::RefCell, collections::VecDeque, sync::Arc, time::Duration};

use bytes::BytesMut;
use thread_local::ThreadLocal;

use super::stream::{Dialer, Stream};
use crate::{clock::coarse_monotonic, proxy::backend_error::BackendError};

/// How long an idle connection is kept.
const IDLE_FOR: Duration = Duration::from_secs(90);
/// Most idle connections kept per backend and thread.
const MAX_IDLE: usize = 512;

/// A connection and the bytes read from it but not yet consumed.
pub struct Conn {
    pub stream: Stream,
    pub buf: BytesMut,
}

struct Idle {
    conn: Conn,
    /// `coarse_monotonic()` when it became idle.
    since: Duration,
}

pub struct Pool {
    /// The `Host` header: the authority without the scheme's default port.
    host: String,
    dialer: Dialer,
    idle: ThreadLocal<RefCell<VecDeque<Idle>>>,
}

impl Pool {
    /// `tls`: the backend's client settings when its scheme is `https`.
    pub fn new(
        authority: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
        connect_timeout: Duration,
    ) -> Result<Pool, String> {
        let default_port = if tls.is_some() { ":443" } else { ":80" };
        Ok(Pool {
            host: authority
                .strip_suffix(default_port)
                .unwrap_or(authority)
                .to_string(),
            dialer: Dialer::new(authority, tls, connect_timeout)?,
            idle: ThreadLocal::new(),
        })
    }

    /// Connects to `address` only (see `Dialer::pinned`).
    pub fn pinned(mut self, address: Option<std::net::SocketAddr>) -> Pool {
        self.dialer = self.dialer.pinned(address);
        self
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The most recently used live idle connection of this thread.
    pub fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.get_or_default().borrow_mut();
        let now = coarse_monotonic();
        while let Some(Idle { mut conn, since }) = idle.pop_back() {
            if now.saturating_sub(since) >= IDLE_FOR {
                // The rest is older still.
                idle.clear();
                return None;
            }
            if conn.stream.is_open() {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps a connection whose last exchange ended cleanly.
    pub fn put(&self, conn: Conn) {
        let mut idle = self.idle.get_or_default().borrow_mut();
        let now = coarse_monotonic();
        if idle.len() >= MAX_IDLE {
            idle.pop_front();
        }
        while idle
            .front()
            .is_some_and(|i| now.saturating_sub(i.since) >= IDLE_FOR)
        {
            idle.pop_front();
        }
        idle.push_back(Idle { conn, since: now });
    }

    /// A new connection.
    pub async fn connect(&self) -> Result<Conn, BackendError> {
        let stream = self
            .dialer
            .dial()
            .await
            .map_err(|e| BackendError::Connect(e.into()))?;
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(8 * 1024),
        })
    }
}

/// A pool and each thread's own handle to it.
pub struct Shared {
    pool: Arc<Pool>,
    locals: ThreadLocal<Arc<Local>>,
}

/// A thread's counted handle to a pool, cloned for every response body
/// (which gives its connection back at its end): the count that changes
/// per request is this thread's alone, not one that both cores' caches
/// pass back and forth.
pub struct Local(Arc<Pool>);

impl Shared {
    pub fn new(pool: Pool) -> Shared {
        Shared {
            pool: Arc::new(pool),
            locals: ThreadLocal::new(),
        }
    }

    /// This thread's handle.
    pub fn local(&self) -> &Arc<Local> {
        self.locals.get_or(|| Arc::new(Local(self.pool.clone())))
    }
}

impl std::ops::Deref for Local {
    type Target = Pool;

    fn deref(&self) -> &Pool {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports_are_dropped_from_host() {
        let plain = |a: &str| Pool::new(a, None, Duration::ZERO).unwrap();
        assert_eq!(plain("backend:80").host(), "backend");
        assert_eq!(plain("backend:8080").host(), "backend:8080");
        assert_eq!(plain("backend:443").host(), "backend:443");
    }

    #[test]
    fn each_thread_has_a_handle_of_its_own_to_the_one_pool() {
        let shared = Shared::new(Pool::new("backend:80", None, Duration::ZERO).unwrap());
        let pool = |l: &Local| -> *const Pool { &**l };
        let here = shared.local().clone();
        assert!(
            Arc::ptr_eq(&here, shared.local()),
            "the same handle each time"
        );
        std::thread::scope(|s| {
            s.spawn(|| {
                let there = shared.local();
                assert!(!Arc::ptr_eq(&here, there), "another thread, another handle");
                assert_eq!(pool(&here), pool(there), "one pool");
            });
        });
    }

    #[tokio::test]
    async fn reuses_open_connections_and_drops_closed_ones() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let pool = Pool::new(&addr, None, Duration::from_secs(1)).unwrap();
        let conn = pool.connect().await.unwrap();
        let (server_side, _) = listener.accept().await.unwrap();
        pool.put(conn);
        let conn = pool.checkout().expect("an open connection is reused");
        pool.put(conn);
        drop(server_side);
        // Let the reactor see the FIN.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(pool.checkout().is_none(), "a closed connection is dropped");
    }
}
