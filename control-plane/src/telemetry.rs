//! The control plane's own telemetry: `GET /metrics` (Prometheus text:
//! requests by route and status, long-polls held, gateways seen, store
//! errors) and, with `--otlp-endpoint`, one server span per REST request
//! exported over OTLP (continuing the caller's `traceparent`). Wraps the
//! API's handler (`api::handle`), which it leaves unchanged.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    fmt::Write,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Instant, SystemTime},
};

use edgegw_otlp::{Export, ServerSpan};
use gateway_model::config::Otlp;
use hyper::{Method, Request, StatusCode, Version, body::Incoming, header};
use opentelemetry::{InstrumentationScope, KeyValue};

use crate::{
    api::{self, http::Reply},
    state::{Lane, State, blocking},
    store,
};

/// Database errors answered (500s), counted where they become answers
/// (`error.rs`): one process is one control plane.
pub static STORE_ERRORS: AtomicU64 = AtomicU64::new(0);

/// A gateway that heartbeated within this many seconds is "seen".
const SEEN_WITHIN_SECS: i64 = 300;

pub struct Telemetry {
    /// (route, status) -> answered.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    long_polls: AtomicI64,
    export: Option<(Export, InstrumentationScope)>,
    scheme: &'static str,
}

impl Telemetry {
    /// Starts the OTLP export when configured (inside the runtime).
    pub fn start(otlp: Option<&Otlp>, tls: bool) -> anyhow::Result<Telemetry> {
        let export = match otlp {
            Some(o) => {
                let export = Export::start(o, "edgegw-cp", env!("CARGO_PKG_VERSION"))?;
                tracing::info!(endpoint = export.endpoint(), "exporting traces over OTLP");
                let scope = InstrumentationScope::builder("edgegw-cp")
                    .with_version(env!("CARGO_PKG_VERSION"))
                    .build();
                Some((export, scope))
            }
            None => None,
        };
        Ok(Telemetry {
            requests: Mutex::default(),
            long_polls: AtomicI64::new(0),
            export,
            scheme: if tls { "https" } else { "http" },
        })
    }

    /// Sends what is queued (at exit).
    pub fn shutdown(&self) {
        if let Some((export, _)) = &self.export {
            export.shutdown();
        }
    }
}

/// Answers one request through the API, counting it and exporting its span.
pub async fn serve(
    telemetry: Arc<Telemetry>,
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Reply, Infallible> {
    let (start, started) = (SystemTime::now(), Instant::now());
    let route = route(req.method(), req.uri().path());
    if route == "/metrics" {
        return Ok(metrics(&telemetry, &state).await);
    }
    let span = telemetry.export.as_ref().and_then(|(export, _)| {
        let parent = req
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(edgegw_otlp::parse_traceparent);
        let (new_trace, span_id) = edgegw_otlp::random_ids();
        let trace_id = parent.map_or(new_trace, |p| p.0);
        export
            .sampled(trace_id, parent.map(|p| (p.1, p.2)))
            .then(|| Started {
                trace_id,
                span_id,
                parent: parent.map(|p| p.1),
                method: req.method().clone(),
                path: req.uri().path().to_string(),
                version: req.version(),
                host: req
                    .headers()
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .map(String::from)
                    .or_else(|| req.uri().authority().map(|a| a.to_string())),
                user_agent: req
                    .headers()
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .map(String::from),
            })
    });
    let polling = route == "/v1/gateway/config";
    if polling {
        telemetry.long_polls.fetch_add(1, Ordering::Relaxed);
    }
    let Ok(reply) = api::handle(state, peer.ip(), req).await;
    if polling {
        telemetry.long_polls.fetch_sub(1, Ordering::Relaxed);
    }
    let status = reply.status().as_u16();
    *telemetry
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry((route, status))
        .or_default() += 1;
    if let (Some(s), Some((export, scope))) = (span, &telemetry.export) {
        export.submit(
            s.end(telemetry.scheme, peer, route, status, start, started),
            scope,
        );
    }
    Ok(reply)
}

/// What the span needs from the request head.
struct Started {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent: Option<[u8; 8]>,
    method: Method,
    path: String,
    version: Version,
    host: Option<String>,
    user_agent: Option<String>,
}

impl Started {
    fn end(
        self,
        scheme: &'static str,
        peer: SocketAddr,
        route: &'static str,
        status: u16,
        start: SystemTime,
        started: Instant,
    ) -> ServerSpan {
        let protocol = match self.version {
            Version::HTTP_2 => "2",
            Version::HTTP_10 => "1.0",
            _ => "1.1",
        };
        let mut attributes = vec![
            KeyValue::new("http.request.method", self.method.to_string()),
            KeyValue::new("url.path", self.path),
            KeyValue::new("url.scheme", scheme),
            KeyValue::new("http.route", route),
            KeyValue::new("network.protocol.version", protocol),
            KeyValue::new("client.address", peer.ip().to_string()),
            KeyValue::new("http.response.status_code", i64::from(status)),
        ];
        if let Some(host) = self.host {
            attributes.push(KeyValue::new("server.address", host));
        }
        if let Some(ua) = self.user_agent {
            attributes.push(KeyValue::new("user_agent.original", ua));
        }
        ServerSpan {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent: self.parent,
            name: format!("{} {route}", self.method),
            start,
            end: start + started.elapsed(),
            attributes,
            error: status >= 500,
        }
    }
}

/// The route a path takes, with names and ids left out: a bounded set of
/// label values.
fn route(method: &Method, path: &str) -> &'static str {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (method, segments.as_slice()) {
        (_, ["healthz"]) => "/healthz",
        (&Method::GET, ["metrics"]) => "/metrics",
        (_, ["v1", "gateway", "config"]) => "/v1/gateway/config",
        (_, ["v1", "gateway", "heartbeat"]) => "/v1/gateway/heartbeat",
        (_, ["v1", "gateway", "analytics"]) => "/v1/gateway/analytics",
        (_, ["v1", "analytics"]) => "/v1/analytics",
        (_, ["v1", "analytics", "drops"]) => "/v1/analytics/drops",
        (_, ["v1", "session"]) => "/v1/session",
        (_, ["v1", "portal", ..]) => "/v1/portal",
        (_, ["ui", ..]) => "/ui",
        (_, ["portal", ..]) => "/portal",
        (_, ["assets", ..]) => "/assets",
        (_, ["v1", "catalog"]) => "/v1/catalog",
        (_, ["v1", "catalog", "apply"]) => "/v1/catalog/apply",
        (_, ["v1", kind]) => v1(kind, false),
        (_, ["v1", kind, _, ..]) => v1(kind, true),
        _ => "unmatched",
    }
}

fn v1(kind: &str, one: bool) -> &'static str {
    const KINDS: [(&str, &str, &str); 15] = [
        ("apis", "/v1/apis", "/v1/apis/{name}"),
        ("products", "/v1/products", "/v1/products/{name}"),
        (
            "subscriptions",
            "/v1/subscriptions",
            "/v1/subscriptions/{id}",
        ),
        ("policies", "/v1/policies", "/v1/policies/{scope}"),
        ("backends", "/v1/backends", "/v1/backends/{name}"),
        (
            "named-values",
            "/v1/named-values",
            "/v1/named-values/{name}",
        ),
        (
            "dos-profiles",
            "/v1/dos-profiles",
            "/v1/dos-profiles/{name}",
        ),
        ("gateways", "/v1/gateways", "/v1/gateways/{name}"),
        ("usage", "/v1/usage", "/v1/usage/{name}"),
        ("state", "/v1/state", "/v1/state/{name}"),
        ("signing-key", "/v1/signing-key", "/v1/signing-key/{name}"),
        ("redis", "/v1/redis", "/v1/redis/{name}"),
        (
            "published-products",
            "/v1/published-products",
            "/v1/published-products/{name}",
        ),
        ("consumers", "/v1/consumers", "/v1/consumers/{email}"),
        (
            "consumer-subscriptions",
            "/v1/consumer-subscriptions",
            "/v1/consumer-subscriptions/{id}",
        ),
    ];
    KINDS
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map_or("/v1/other", |(_, all, each)| if one { each } else { all })
}

async fn metrics(telemetry: &Telemetry, state: &Arc<State>) -> Reply {
    let seen = blocking(state, Lane::Admin, |s| {
        Ok(s.store
            .read(|c| store::gateways::seen_within(c, SEEN_WITHIN_SECS))?)
    })
    .await;
    let mut out = String::with_capacity(2048);
    out.push_str("# HELP edgegw_cp_requests_total Requests answered, by route and status.\n# TYPE edgegw_cp_requests_total counter\n");
    for ((route, status), n) in telemetry
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let _ = writeln!(
            out,
            "edgegw_cp_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
        );
    }
    let _ = write!(
        out,
        "# HELP edgegw_cp_long_polls Gateway configuration long-polls held open now.\n# TYPE edgegw_cp_long_polls gauge\nedgegw_cp_long_polls {}\n\
         # HELP edgegw_cp_store_errors_total Database errors answered with a 500.\n# TYPE edgegw_cp_store_errors_total counter\nedgegw_cp_store_errors_total {}\n\
         # HELP edgegw_cp_build_info The running binary's version.\n# TYPE edgegw_cp_build_info gauge\nedgegw_cp_build_info{{version=\"{}\"}} 1\n",
        telemetry.long_polls.load(Ordering::Relaxed),
        STORE_ERRORS.load(Ordering::Relaxed),
        env!("CARGO_PKG_VERSION"),
    );
    match seen {
        Ok(n) => {
            let _ = write!(
                out,
                "# HELP edgegw_cp_gateways_seen Gateways that sent a heartbeat in the last {SEEN_WITHIN_SECS} s.\n# TYPE edgegw_cp_gateways_seen gauge\nedgegw_cp_gateways_seen {n}\n"
            );
        }
        Err(e) => tracing::warn!(error = %e.message, "/metrics: counting gateways"),
    }
    if let Some((export, _)) = &telemetry.export {
        export.render_metrics("edgegw_cp", &mut out);
    }
    hyper::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(http_body_util::Full::new(bytes::Bytes::from(out)))
        .expect("static parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_a_bounded_set() {
        for (method, path, want) in [
            (Method::GET, "/v1/apis", "/v1/apis"),
            (Method::PUT, "/v1/apis/orders", "/v1/apis/{name}"),
            (
                Method::GET,
                "/v1/gateways/edge-1/token",
                "/v1/gateways/{name}",
            ),
            (Method::GET, "/v1/gateway/config", "/v1/gateway/config"),
            (Method::POST, "/v1/catalog/apply", "/v1/catalog/apply"),
            (Method::GET, "/v1/whatever-a-scanner-tries/x", "/v1/other"),
            (Method::GET, "/wp-admin", "unmatched"),
            (Method::GET, "/metrics", "/metrics"),
            (Method::GET, "/ui/anything/at/all", "/ui"),
            (Method::GET, "/assets/ui-1234.js", "/assets"),
            (
                Method::POST,
                "/v1/portal/subscriptions/x/regenerate",
                "/v1/portal",
            ),
            (
                Method::DELETE,
                "/v1/consumers/a@b.c",
                "/v1/consumers/{email}",
            ),
        ] {
            assert_eq!(route(&method, path), want, "{method} {path}");
        }
    }
}
