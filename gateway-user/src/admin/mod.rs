//! The admin listener: `/healthz` (the process answers), `/readyz` (XDP is
//! attached and the listeners are bound), `/metrics` (Prometheus text) and
//! `/analytics` (the analytics period in progress, JSON).

mod metrics;
mod otlp;

pub use metrics::{BUCKETS, Metrics, Recorder, Rejection, RequestSeries};

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Incoming, header, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::datapath::PinDir;

/// What the admin endpoints report on.
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    /// Set once the listeners are bound and XDP (if enabled) is attached.
    pub ready: AtomicBool,
    /// Pins of the attached XDP program, for its counters.
    pub xdp: Option<PinDir>,
    /// The control plane sync of a managed gateway: `/readyz` details.
    pub sync: Option<Arc<crate::sync::SyncState>>,
    /// The Redis of cluster rate limits: its metrics.
    pub redis: Arc<crate::redis_link::RedisSlot>,
    /// Request analytics: `/analytics` (the period in progress) and the
    /// sending counters in `/metrics`; `None` when turned off.
    pub analytics: Option<Arc<crate::analytics::Analytics>>,
    /// The backend pools' metrics.
    pub pool_metrics: Option<PoolMetrics>,
}

/// Writes the backend pools' Prometheus lines (made by the node, so that
/// the admin listener does not depend on the proxy, which records into it).
pub type PoolMetrics = Box<dyn Fn(&mut String) + Send + Sync>;

/// The answer of `/analytics` when analytics are turned off.
pub const ANALYTICS_OFF: &str =
    "request analytics are off ([analytics] enabled = false); remove that line to turn them on\n";

/// Serves the admin endpoints until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>) {
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        let service = service_fn(move |req| {
            let state = state.clone();
            async move { Ok::<_, Infallible>(answer(&state, &req)) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(conn);
    }
}

fn answer(state: &AdminState, req: &Request<Incoming>) -> Response<Full<bytes::Bytes>> {
    let (status, content_type, body) = match req.uri().path() {
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        // Ready means serving: a sync problem does not stop that, but it
        // is shown (a refused token must not go unnoticed).
        "/readyz" if state.ready.load(Ordering::Acquire) => {
            let details = state
                .sync
                .as_ref()
                .map(|s| format!("{}\n", s.view().summary()))
                .unwrap_or_default();
            (StatusCode::OK, "text/plain", format!("ready\n{details}"))
        }
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready\n".to_string(),
        ),
        "/metrics" => {
            let xdp = state.xdp.as_ref().and_then(|dir| {
                crate::datapath::read_counters(dir)
                    .inspect_err(|e| tracing::warn!(error = %e, "reading XDP counters"))
                    .ok()
            });
            let mut body = state.metrics.render(xdp.as_deref());
            if let Some(redis) = state.redis.get() {
                redis.render_metrics(&mut body);
            }
            if let Some(analytics) = &state.analytics {
                analytics.render_metrics(&mut body);
            }
            if let Some(pools) = &state.pool_metrics {
                pools(&mut body);
            }
            (StatusCode::OK, "text/plain; version=0.0.4", body)
        }
        "/analytics" => match &state.analytics {
            Some(analytics) => (
                StatusCode::OK,
                "application/json",
                analytics.current().to_string(),
            ),
            None => (
                StatusCode::NOT_FOUND,
                "text/plain",
                ANALYTICS_OFF.to_string(),
            ),
        },
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /healthz, /readyz, /metrics or /analytics\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
