//! `edgegw-cp serve`: opens the store, binds the listener (HTTPS with
//! `--tls-cert/--tls-key`, HTTP/1.1 and HTTP/2), tells systemd it is
//! ready, pings the watchdog while the store answers, re-reads its TLS
//! certificate and key on SIGHUP (a renewed certificate needs no restart;
//! a broken one is refused and the current one kept), and stops on
//! SIGTERM/SIGINT. Writes are atomic transactions (SQLite or PostgreSQL),
//! so stopping at any point loses nothing committed.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use gateway_model::notify::{self, Notifier};
use hyper::service::service_fn;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
    sync::watch,
};
use tokio_rustls::TlsAcceptor;
use tracing_subscriber::EnvFilter;

use crate::{
    cli::ServeArgs,
    state::State,
    store,
    telemetry::{self, Telemetry},
    tokens,
};

/// Concurrent HTTP/2 streams per connection (hyper's default is 200).
const MAX_STREAMS: u32 = 4096;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let otlp = args.otlp()?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(acceptor(cert, key, args.tls_client_ca.as_deref())?),
        _ => None,
    };
    // PostgreSQL's driver runs on the server's runtime from the start.
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let _entered = runtime.enter();
    let store = args.db.open()?;
    store
        .write(tokens::ensure_signing_key)
        .with_context(|| format!("database {}: writing the signing key", args.db.db))?;
    // Logged once listening, so a failure to start stays one line.
    let hint = (store.read(tokens::admin_count)? == 0).then(|| {
        format!(
            "no admin token yet: create one with `edgegw-cp admin-token create --db {}`",
            args.db.db
        )
    });
    let revision = store.read(store::revision)?;
    let state = Arc::new(State {
        store,
        revision: watch::channel(revision).0,
        token_ttl: args.token_ttl,
        admin_slots: tokio::sync::Semaphore::new(crate::state::ADMIN_SLOTS),
        gateway_slots: tokio::sync::Semaphore::new(crate::state::GATEWAY_SLOTS),
        document_slots: tokio::sync::Semaphore::new(crate::state::DOCUMENT_SLOTS),
        analytics: crate::analytics::Settings::new(
            args.analytics_minutes_for,
            args.analytics_retention,
        ),
        web: crate::web::Settings::new(args.session_ttl, args.portal_gateways.clone()),
        gateway_certs_required: args.tls_client_ca.is_some(),
    });
    // Re-assemble every bundle with this binary (an upgrade may assemble
    // them differently); versions move only where the content changed. If
    // the stored catalog no longer validates, gateways keep what they run.
    if let Err(e) = state.write(|_| Ok(())) {
        tracing::error!(
            "the stored configuration does not validate: {}; gateways keep their current bundles until a write fixes it",
            e.message
        );
    }
    // Other replicas' writes wake this one's long-polls too.
    state.store.follow_revisions(state.revision.clone());
    let telemetry = Arc::new(Telemetry::start(otlp.as_ref(), tls.is_some())?);
    let served = runtime.block_on(serve(
        state,
        telemetry.clone(),
        args.listen,
        tls,
        tls_files(&args),
        hint,
    ));
    // Spans still queued go out (bounded by the export timeout).
    telemetry.shutdown();
    served
}

/// The certificate, key and client CA files SIGHUP re-reads.
type TlsFiles = (
    std::path::PathBuf,
    std::path::PathBuf,
    Option<std::path::PathBuf>,
);

fn tls_files(args: &ServeArgs) -> Option<TlsFiles> {
    Some((
        args.tls_cert.clone()?,
        args.tls_key.clone()?,
        args.tls_client_ca.clone(),
    ))
}

/// Client certificates verified against `ca` (when given); connections
/// without one are accepted (the gateway endpoints refuse their requests).
fn client_verifier(
    ca: Option<&Path>,
) -> anyhow::Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let Some(ca) = ca else {
        return Ok(rustls::server::WebPkiClientVerifier::no_client_auth());
    };
    let certs = CertificateDer::pem_file_iter(ca)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("--tls-client-ca {}: cannot read it; give a PEM file of the CA certificates gateways' certificates chain to", ca.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "--tls-client-ca {}: no CERTIFICATE block; give a PEM file of the CA certificates gateways' certificates chain to",
        ca.display()
    );
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots.add(c).with_context(|| {
            format!(
                "--tls-client-ca {}: a CA certificate is unusable",
                ca.display()
            )
        })?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .allow_unauthenticated()
    .build()
    .with_context(|| format!("--tls-client-ca {}", ca.display()))
}

fn acceptor(cert: &Path, key: &Path, client_ca: Option<&Path>) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificate file {}", cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "certificate file {} has no CERTIFICATE block; pass a PEM certificate chain",
        cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading key file {}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_client_cert_verifier(client_verifier(client_ca)?)
    .with_single_cert(certs, key)
    .context("the TLS key does not match the certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn serve(
    state: Arc<State>,
    telemetry: Arc<Telemetry>,
    listen: std::net::SocketAddr,
    mut tls: Option<TlsAcceptor>,
    tls_files: Option<TlsFiles>,
    hint: Option<String>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}; is another process using it?"))?;
    let local = listener.local_addr()?;
    if let Some(hint) = hint {
        tracing::warn!("{hint}");
    }
    if !crate::web::assets::built() {
        tracing::warn!(
            "this edgegw-cp was built without the web console's pages; /ui and /portal say how to build them (cargo xtask build)"
        );
    }
    let notifier = Notifier::from_env()?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    if let Some(every) = notify::watchdog_interval() {
        tokio::spawn(watchdog(state.clone(), every));
    }
    tracing::info!(listen = %local, tls = tls.is_some(), "edgegw-cp ready");
    notifier.ready(&format!("serving on {local}"));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or similar: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = hup.recv() => {
                // `systemctl reload`: the catalog lives in the database and
                // takes effect on commit; only the TLS files are re-read.
                reload_tls(&mut tls, tls_files.as_ref());
                continue;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let state = state.clone();
        let telemetry = telemetry.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = move |verified: bool| {
                service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(crate::state::ClientCertVerified(verified));
                    telemetry::serve(telemetry.clone(), state.clone(), peer, req)
                })
            };
            let mut builder = auto::Builder::new(TokioExecutor::new());
            // A fleet may hold its long-polls on one HTTP/2 connection.
            builder.http2().max_concurrent_streams(MAX_STREAMS);
            let served = match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => {
                        // The verifier refused certificates that do not chain.
                        let verified = stream.get_ref().1.peer_certificates().is_some();
                        builder
                            .serve_connection(TokioIo::new(stream), service(verified))
                            .await
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                },
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service(false))
                        .await
                }
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    notifier.stopping();
    tracing::info!("edgegw-cp stopping");
    Ok(())
}

/// Replaces the acceptor with one built from the files as they are now;
/// new connections get the new certificate, open ones keep theirs.
fn reload_tls(tls: &mut Option<TlsAcceptor>, files: Option<&TlsFiles>) {
    let Some((cert, key, client_ca)) = files else {
        tracing::info!("SIGHUP: nothing to reload (no TLS; the configuration is the database)");
        return;
    };
    match acceptor(cert, key, client_ca.as_deref()) {
        Ok(acceptor) => {
            *tls = Some(acceptor);
            tracing::info!(cert = %cert.display(), "SIGHUP: TLS certificate reloaded");
        }
        Err(e) => tracing::error!(
            "SIGHUP: keeping the current TLS certificate: {:#}; fix {} / {} and send SIGHUP again",
            e,
            cert.display(),
            key.display()
        ),
    }
}

/// Pings the systemd watchdog while the store still answers, so a wedged
/// database gets the service restarted.
async fn watchdog(state: Arc<State>, every: Duration) {
    let notifier = match Notifier::from_env() {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "watchdog disabled");
            return;
        }
    };
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let alive = crate::state::blocking(&state, crate::state::Lane::Gateway, |s| {
            Ok(s.store.read(store::revision)?)
        })
        .await
        .is_ok();
        if alive {
            notifier.watchdog();
        }
    }
}
