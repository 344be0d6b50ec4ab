//! The admin side of the REST API, for `export` and `apply`: one HTTP/1.1
//! request per call, over TLS verified against `--ca-file` (else the
//! system's roots), with the admin token from `--token-file` or
//! `EDGEGW_CP_TOKEN` (never a command-line value: it would show in `ps`).

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri, body::Bytes, header};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use serde_json::Value;
use tokio::net::TcpStream;

/// How long one call may take (a whole catalog, validated).
const TIMEOUT: Duration = Duration::from_secs(120);

/// Where the control plane is and how to reach it.
#[derive(Debug, clap::Args)]
pub struct Remote {
    /// The control plane, e.g. https://cp.example:9443 (default: the
    /// EDGEGW_CP_URL environment variable).
    #[arg(long)]
    pub url: Option<String>,
    /// PEM file of the CA that signed the control plane's certificate
    /// (default: the system's roots).
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// File holding an admin token (its first line); default: the
    /// EDGEGW_CP_TOKEN environment variable.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// A connected client: runs calls on its own runtime.
pub struct Client {
    base: Uri,
    host: String,
    port: u16,
    tls: Option<tokio_rustls::TlsConnector>,
    token: String,
    runtime: tokio::runtime::Runtime,
}

impl Remote {
    pub fn client(&self) -> anyhow::Result<Client> {
        let url = match &self.url {
            Some(u) => u.clone(),
            None => std::env::var("EDGEGW_CP_URL").map_err(|_| {
                anyhow::anyhow!(
                    "no control plane given: pass --url https://HOST:PORT or set EDGEGW_CP_URL"
                )
            })?,
        };
        let base: Uri = url
            .parse()
            .with_context(|| format!("--url {url:?} is not a URL; e.g. https://cp.example:9443"))?;
        let tls = match base.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => anyhow::bail!("--url {url:?}: use an https:// (or http://) URL"),
        };
        let host = base
            .host()
            .with_context(|| format!("--url {url:?} names no host"))?
            .trim_matches(['[', ']'])
            .to_string();
        let port = base.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let token = match &self.token_file {
            Some(file) => std::fs::read_to_string(file)
                .with_context(|| {
                    format!(
                        "--token-file {}: cannot read it; check the path",
                        file.display()
                    )
                })?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
            None => std::env::var("EDGEGW_CP_TOKEN").unwrap_or_default(),
        };
        anyhow::ensure!(
            !token.is_empty(),
            "no admin token: set EDGEGW_CP_TOKEN or pass --token-file FILE (make one with `edgegw-cp admin-token create`)"
        );
        let tls = if tls { Some(self.connector()?) } else { None };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Client {
            base,
            host,
            port,
            tls,
            token,
            runtime,
        })
    }

    fn connector(&self) -> anyhow::Result<tokio_rustls::TlsConnector> {
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(file) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
                    .and_then(|i| i.collect())
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "--ca-file {}: {e}; give the PEM file of the CA that signed the control plane's certificate",
                            file.display()
                        )
                    })?;
                anyhow::ensure!(
                    !certs.is_empty(),
                    "--ca-file {}: no certificate in it; give a PEM file",
                    file.display()
                );
                for cert in certs {
                    roots.add(cert)?;
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
    }
}

impl Client {
    /// `METHOD path` with an optional JSON body: the status and the JSON
    /// answer (`Value::Null` when empty).
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let shown = format!("{}{path}", self.base.to_string().trim_end_matches('/'));
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let answer = self.runtime.block_on(async {
            tokio::time::timeout(TIMEOUT, self.send(method, path, body))
                .await
                .unwrap_or_else(|_| anyhow::bail!("no answer within {} s", TIMEOUT.as_secs()))
        });
        let (status, bytes) =
            answer.with_context(|| format!("{shown}: the control plane did not answer"))?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).with_context(|| {
                format!("{shown}: answered {status} with a body that is not JSON")
            })?
        };
        Ok((status, value))
    }

    async fn send(&self, method: Method, path: &str, body: String) -> anyhow::Result<(u16, Bytes)> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("connecting to {}:{}", self.host, self.port))?;
        let authority = self
            .base
            .authority()
            .map_or(self.host.clone(), |a| a.to_string());
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base.path().trim_end_matches('/')))
            .header(header::HOST, authority)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        match &self.tls {
            Some(tls) => {
                let name = ServerName::try_from(self.host.clone())?;
                let stream = tls.connect(name, tcp).await.context("TLS handshake")?;
                exchange(TokioIo::new(stream), request).await
            }
            None => exchange(TokioIo::new(tcp), request).await,
        }
    }
}

async fn exchange<IO>(io: IO, request: Request<Full<Bytes>>) -> anyhow::Result<(u16, Bytes)>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(conn);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// The message of an error answer (`{"statusCode", "message"}`).
pub fn message(status: u16, body: &Value) -> String {
    match body.get("message").and_then(Value::as_str) {
        Some(m) => format!("{status}: {m}"),
        None => format!("{status}: {body}"),
    }
}
