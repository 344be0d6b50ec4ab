//! The systemd watchdog, fed from the serving path: each interval a probe
//! sends a request to the gateway's own listener and WATCHDOG=1 goes out only
//! if an HTTP response comes back. A stalled accept loop, a wedged runtime or
//! a listener that stopped answering stops the pings, and systemd restarts the
//! daemon after `WatchdogSec`.
//!
//! The probe is a request the HTTP layer answers itself (400 for an invalid
//! Content-Length) so that it never reaches a backend: a slow backend must not
//! get the gateway restarted.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::notify::Notifier;

const PROBE: &[u8] =
    b"GET /.edgegw/watchdog HTTP/1.1\r\nHost: localhost\r\nContent-Length: probe\r\n\r\n";

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no answer from {addr} within {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("talking to {addr}: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr} answered something that is not HTTP/1.1")]
    NotHttp { addr: SocketAddr },
}

/// Sends WATCHDOG=1 every `interval` for as long as `listen` answers.
pub fn spawn(notifier: Arc<Notifier>, listen: SocketAddr, interval: Duration) {
    let target = loopback_for(listen);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match probe(target, interval).await {
                Ok(()) => notifier.watchdog(),
                Err(err) => {
                    tracing::error!(error = %err, "watchdog probe failed; not pinging systemd")
                }
            }
        }
    });
}

/// One request to `addr`; Ok if an HTTP/1.1 status line comes back in time.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> Result<(), ProbeError> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(PROBE).await?;
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head)
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(ProbeError::Timeout { addr, timeout }),
        Ok(Err(source)) => Err(ProbeError::Io { addr, source }),
        Ok(Ok(head)) if &head == b"HTTP/1.1 " => Ok(()),
        Ok(Ok(_)) => Err(ProbeError::NotHttp { addr }),
    }
}

/// A wildcard listener is probed over loopback.
fn loopback_for(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn wildcard_listeners_are_probed_on_loopback() {
        let a: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(loopback_for(a), "127.0.0.1:8080".parse().unwrap());
        let b: SocketAddr = "[::]:80".parse().unwrap();
        assert_eq!(loopback_for(b), "[::1]:80".parse().unwrap());
        let c: SocketAddr = "10.1.2.3:80".parse().unwrap();
        assert_eq!(loopback_for(c), c);
    }

    #[tokio::test]
    async fn a_listener_that_accepts_but_never_answers_fails_the_probe() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accept and hold the connection without answering: a hung server.
        let held = tokio::spawn(async move { listener.accept().await });
        let err = probe(addr, Duration::from_millis(200)).await.unwrap_err();
        assert!(matches!(err, ProbeError::Timeout { .. }), "{err}");
        held.abort();
    }

    #[tokio::test]
    async fn a_closed_port_fails_and_an_http_answer_passes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        assert!(matches!(
            probe(addr, Duration::from_secs(2)).await,
            Err(ProbeError::Io { .. })
        ));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf).await;
            s.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
        });
        probe(addr, Duration::from_secs(2)).await.unwrap();
    }
}
