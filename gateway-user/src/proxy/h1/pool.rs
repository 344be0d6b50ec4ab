//! Idle connections to one backend, kept per worker thread: a connection
//! is only reused by the thread (and runtime) that opened it, so taking
//! and returning one is a plain `Vec` operation, with no lock.

use std::{cell::RefCell, collections::VecDeque, net::SocketAddr, time::Duration};

use bytes::BytesMut;
use thread_local::ThreadLocal;
use tokio::net::TcpStream;

use crate::{clock::coarse_monotonic, proxy::backend::BackendError};

/// How long an idle connection is kept.
const IDLE_FOR: Duration = Duration::from_secs(90);
/// Most idle connections kept per backend and thread.
const MAX_IDLE: usize = 512;

/// A connection and the bytes read from it but not yet consumed.
pub struct Conn {
    pub stream: TcpStream,
    pub buf: BytesMut,
}

struct Idle {
    conn: Conn,
    /// `coarse_monotonic()` when it became idle.
    since: Duration,
}

pub struct Pool {
    /// `host:port`, as configured.
    authority: String,
    /// The `Host` header: the authority without a default port.
    host: String,
    connect_timeout: Duration,
    idle: ThreadLocal<RefCell<VecDeque<Idle>>>,
}

impl Pool {
    pub fn new(authority: &str, connect_timeout: Duration) -> Pool {
        Pool {
            host: authority
                .strip_suffix(":80")
                .unwrap_or(authority)
                .to_string(),
            authority: authority.to_string(),
            connect_timeout,
            idle: ThreadLocal::new(),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The most recently used live idle connection of this thread.
    pub fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.get_or_default().borrow_mut();
        let now = coarse_monotonic();
        while let Some(Idle { conn, since }) = idle.pop_back() {
            if now.saturating_sub(since) >= IDLE_FOR {
                // The rest is older still.
                idle.clear();
                return None;
            }
            if is_open(&conn.stream) {
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

    /// A new connection, trying each resolved address in turn.
    pub async fn connect(&self) -> Result<Conn, BackendError> {
        let addrs: Vec<SocketAddr> = match self.authority.parse::<SocketAddr>() {
            Ok(addr) => vec![addr],
            Err(_) => tokio::net::lookup_host(with_port(&self.authority))
                .await
                .map_err(|e| BackendError::Connect(e.into()))?
                .collect(),
        };
        let mut last = None;
        for addr in addrs {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(Conn {
                        stream,
                        buf: BytesMut::with_capacity(8 * 1024),
                    });
                }
                Ok(Err(e)) => last = Some(e),
                Err(_) => {
                    last = Some(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("connect to {addr} timed out"),
                    ))
                }
            }
        }
        Err(BackendError::Connect(last.map_or_else(
            || format!("{} resolved to no address", self.authority).into(),
            Into::into,
        )))
    }
}

fn with_port(authority: &str) -> String {
    let has_port = match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    };
    if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    }
}

/// False when the backend closed the connection (or sent bytes nobody
/// asked for) while it was idle. Costs no system call when the reactor
/// has seen nothing since the last read.
fn is_open(stream: &TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports_are_added_for_lookup_and_dropped_from_host() {
        assert_eq!(with_port("backend"), "backend:80");
        assert_eq!(with_port("backend:8080"), "backend:8080");
        assert_eq!(with_port("[::1]"), "[::1]:80");
        assert_eq!(with_port("[::1]:81"), "[::1]:81");
        assert_eq!(Pool::new("backend:80", Duration::ZERO).host(), "backend");
        assert_eq!(
            Pool::new("backend:8080", Duration::ZERO).host(),
            "backend:8080"
        );
    }

    #[tokio::test]
    async fn reuses_open_connections_and_drops_closed_ones() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let pool = Pool::new(&addr, Duration::from_secs(1));
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
