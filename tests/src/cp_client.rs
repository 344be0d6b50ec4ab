//! A keep-alive HTTPS client of the control plane for the benches that
//! drive it from one process (`sync_bench`, `ingest_bench`): many
//! connections on one tokio runtime, where a curl per request would
//! measure curl.

use std::{collections::HashMap, sync::Arc};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, client::conn::http1::SendRequest};
use hyper_util::rt::TokioIo;
use nix::unistd::{SysconfVar, sysconf};
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};

use crate::cp::ControlPlane;

pub type Sender = SendRequest<Full<Bytes>>;

/// A TLS client trusting the control plane's CA.
pub fn tls(cp: &ControlPlane) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cp.ca_file()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One HTTP/1.1 connection to the control plane at `addr`.
pub async fn connect(addr: std::net::SocketAddr, tls: tokio_rustls::TlsConnector) -> Sender {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let stream = tls.connect(name, tcp).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// A request with bearer `token` and a JSON body; status, headers, body.
pub async fn send(
    sender: &mut Sender,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, String)],
    body: String,
) -> (u16, HashMap<String, String>, Bytes) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    sender.ready().await.unwrap();
    let response = sender
        .send_request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

/// Resident memory (KiB) and CPU seconds (user + system) of `pid`.
pub fn usage(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces), 1-based from 3.
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = rest[11].parse::<u64>().unwrap() + rest[12].parse::<u64>().unwrap();
    let hz = sysconf(SysconfVar::CLK_TCK)
        .expect("sysconf(_SC_CLK_TCK)")
        .expect("_SC_CLK_TCK has a value") as f64;
    (rss, ticks as f64 / hz)
}
