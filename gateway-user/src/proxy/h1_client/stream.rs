//! A backend connection's byte stream: plain TCP, or TLS over it (rustls,
//! with the backend's CA settings), opened within the connect timeout.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use rustls_pki_types::ServerName;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// How to reach one backend.
pub struct Dialer {
    /// `host:port`, the port added when the URL left it out.
    address: String,
    /// Set for one address of a host name (a pool member of its own):
    /// dialled instead of resolving `address`.
    pinned: Option<SocketAddr>,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
}

impl Dialer {
    /// `tls`: the backend's client settings when its scheme is `https`.
    pub fn new(
        authority: &str,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Result<Dialer, String> {
        let default_port = if tls.is_some() { 443 } else { 80 };
        let tls = match tls {
            None => None,
            Some(config) => {
                let host = host_of(authority)
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let name = ServerName::try_from(host.to_string())
                    .map_err(|_| format!("{host} is not a valid TLS server name"))?;
                Some((TlsConnector::from(config), name))
            }
        };
        Ok(Dialer {
            address: with_port(authority, default_port),
            pinned: None,
            tls,
            timeout,
        })
    }

    /// Dials `address` only, whatever the host name resolves to; the name
    /// still goes in TLS's server name.
    pub fn pinned(mut self, address: Option<SocketAddr>) -> Dialer {
        self.pinned = address;
        self
    }

    /// A new connection (trying each resolved address in turn), with its
    /// TLS handshake done.
    pub async fn dial(&self) -> io::Result<Stream> {
        tokio::time::timeout(self.timeout, self.dial_untimed())
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connecting to {} timed out", self.address),
                )
            })?
    }

    async fn dial_untimed(&self) -> io::Result<Stream> {
        let addrs: Vec<SocketAddr> = match self.pinned.ok_or(()).or_else(|()| self.address.parse())
        {
            Ok(addr) => vec![addr],
            Err(_) => tokio::net::lookup_host(&self.address).await?.collect(),
        };
        let mut last = io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} resolved to no address", self.address),
        );
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    return match &self.tls {
                        None => Ok(Stream::Plain(tcp)),
                        Some((connector, name)) => {
                            let tls = connector.connect(name.clone(), tcp).await?;
                            Ok(Stream::Tls(Box::new(tls)))
                        }
                    };
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl Stream {
    /// False when the backend closed the connection (or sent bytes nobody
    /// asked for) while it was idle. A plain socket costs no system call
    /// when the reactor has seen nothing since the last read; TLS records
    /// that are not data (session tickets) are absorbed.
    pub fn is_open(&mut self) -> bool {
        let mut probe = [0u8; 1];
        let mut buf = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(Waker::noop());
        matches!(Pin::new(self).poll_read(&mut cx, &mut buf), Poll::Pending)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, b),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, b),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The host part of `host[:port]` or `[v6][:port]`.
fn host_of(authority: &str) -> &str {
    match authority.rfind(']') {
        Some(end) => &authority[..=end],
        None => authority.split(':').next().unwrap_or(authority),
    }
}

fn with_port(authority: &str, default_port: u16) -> String {
    if host_of(authority).len() < authority.len() {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports_are_added_for_lookup() {
        assert_eq!(with_port("backend", 80), "backend:80");
        assert_eq!(with_port("backend:8080", 80), "backend:8080");
        assert_eq!(with_port("[::1]", 443), "[::1]:443");
        assert_eq!(with_port("[::1]:81", 443), "[::1]:81");
        assert_eq!(host_of("[::1]:81"), "[::1]");
        assert_eq!(host_of("api.example:443"), "api.example");
    }
}
