//! Per-request bookkeeping: bytes in and out, durations, and, when the
//! response body ends (or the client goes away), one access-log line and
//! the request metrics.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use hyper::{
    Method, Uri, Version,
    body::{Body, Frame, SizeHint},
    header::HeaderValue,
};

use super::{BoxError, ProxyBody, access_log::AccessLog, headers::Trace, limits::InFlight};
use crate::admin::Recorder;

/// Counts the bytes of the body it wraps.
pub struct Counted<B> {
    inner: B,
    bytes: Arc<AtomicU64>,
}

impl<B> Counted<B> {
    pub fn new(inner: B, bytes: Arc<AtomicU64>) -> Self {
        Counted { inner, bytes }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Everything the access log and metrics need about one request.
pub struct Record {
    pub started: Instant,
    /// Only when the access log is on or the request's span is exported:
    /// the rest of the request's description costs nothing otherwise
    /// (boxed: the record is moved with the response, through every
    /// layer that returns it).
    pub logged: Option<Box<Logged>>,
    pub api: Option<std::sync::Arc<str>>,
    pub operation: Option<std::sync::Arc<str>>,
    /// Of an API-management call: the product it went through and the
    /// subscription whose key it carried.
    pub product: Option<std::sync::Arc<str>>,
    pub subscription: Option<std::sync::Arc<str>>,
    pub status: u16,
    /// Counted as the body is read; none for a request without one.
    pub bytes_in: Option<Arc<AtomicU64>>,
    pub backend: Option<Duration>,
    /// Its trace id is the request id.
    pub trace: Trace,
    /// The request's span goes to the OTLP collector.
    pub sampled: bool,
    /// Bandwidth quotas charged with bytes in + out when the call ends.
    pub charges: Vec<crate::policy::Charge>,
}

/// What only the access log and the span need about a request.
pub struct Logged {
    pub time: SystemTime,
    pub client_ip: std::net::IpAddr,
    pub method: Method,
    /// Shares the request's buffer: no copy of the path.
    pub uri: Uri,
    /// The query with secrets redacted (`redact::query`).
    pub query: Option<String>,
    pub host: Option<HeaderValue>,
    pub version: Version,
    /// "http" or "https".
    pub scheme: &'static str,
    pub user_agent: Option<HeaderValue>,
    /// host:port of the backend the request went to.
    pub backend: Option<String>,
    /// The backend's status, before outbound policies.
    pub backend_status: Option<u16>,
    /// The policy or check that refused the request.
    pub refused_by: Option<&'static str>,
    /// What `trace` policies wrote.
    pub traces: Vec<crate::policy::trace::Event>,
}

impl Logged {
    pub fn host(&self) -> Option<&str> {
        self.host.as_ref().and_then(|h| h.to_str().ok())
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_ref().and_then(|h| h.to_str().ok())
    }

    /// `network.protocol.version`.
    pub fn protocol(&self) -> &'static str {
        match self.version {
            Version::HTTP_09 => "0.9",
            Version::HTTP_10 => "1.0",
            Version::HTTP_2 => "2",
            Version::HTTP_3 => "3",
            _ => "1.1",
        }
    }
}

/// The response body, which emits the record when it is dropped.
pub struct Observed {
    inner: ProxyBody,
    bytes_out: u64,
    record: Option<Record>,
    log: AccessLog,
    metrics: Recorder,
    otel: Option<&'static crate::telemetry::Otel>,
    _in_flight: InFlight,
}

impl Observed {
    pub fn new(
        inner: ProxyBody,
        record: Record,
        log: AccessLog,
        metrics: Recorder,
        otel: Option<&'static crate::telemetry::Otel>,
        in_flight: InFlight,
    ) -> Observed {
        Observed {
            inner,
            bytes_out: 0,
            record: Some(record),
            log,
            metrics,
            otel,
            _in_flight: in_flight,
        }
    }
}

impl Body for Observed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.bytes_out += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        let Some(r) = self.record.take() else {
            return;
        };
        let bytes_in = r.bytes_in.as_ref().map_or(0, |b| b.load(Ordering::Relaxed));
        for charge in &r.charges {
            charge.add(bytes_in + self.bytes_out);
        }
        let total = r.started.elapsed();
        let api = r.api.as_deref().unwrap_or("-");
        let operation = r.operation.as_deref().unwrap_or("-");
        self.metrics
            .request(api, operation, r.status, total, r.backend);
        if let Some(analytics) = self.metrics.analytics() {
            analytics.record(&crate::analytics::Finished {
                api: r.api.as_deref(),
                operation: r.operation.as_deref(),
                product: r.product.as_deref(),
                subscription: r.subscription.as_deref(),
                status: r.status,
                bytes_in,
                bytes_out: self.bytes_out,
                latency: total,
            });
        }
        let Some(logged) = r.logged.as_deref() else {
            return;
        };
        if let Some(otel) = self.otel.filter(|_| r.sampled) {
            otel.submit(super::span::build(
                &r,
                logged,
                bytes_in,
                self.bytes_out,
                total,
            ));
        }
        if !self.log.enabled() {
            return;
        }
        self.log.write(&Line {
            time: crate::clock::rfc3339_millis(logged.time),
            trace_id: r.trace.trace_id(),
            client_address: logged.client_ip,
            method: logged.method.as_str(),
            scheme: logged.scheme,
            host: logged.host(),
            path: logged.uri.path(),
            query: logged.query.as_deref(),
            protocol: logged.protocol(),
            user_agent: logged.user_agent(),
            api: r.api.as_deref(),
            operation: r.operation.as_deref(),
            subscription: r.subscription.as_deref(),
            product: r.product.as_deref(),
            status: r.status,
            refused_by: logged.refused_by,
            backend: logged.backend.as_deref(),
            backend_status: logged.backend_status,
            bytes_in,
            bytes_out: self.bytes_out,
            duration_ms: millis(total),
            backend_ms: r.backend.map(millis),
            trace: &logged.traces,
        });
    }
}

/// One access-log line, its fields in the order they are written; names
/// follow the OpenTelemetry HTTP semantic conventions where one exists
/// (docs/operator-guide.md has the mapping from the names before).
#[derive(serde::Serialize)]
struct Line<'a> {
    time: String,
    trace_id: &'a str,
    #[serde(rename = "client.address")]
    client_address: std::net::IpAddr,
    #[serde(rename = "http.request.method")]
    method: &'a str,
    #[serde(rename = "url.scheme")]
    scheme: &'a str,
    #[serde(rename = "server.address")]
    host: Option<&'a str>,
    #[serde(rename = "url.path")]
    path: &'a str,
    #[serde(rename = "url.query")]
    query: Option<&'a str>,
    #[serde(rename = "network.protocol.version")]
    protocol: &'a str,
    #[serde(rename = "user_agent.original")]
    user_agent: Option<&'a str>,
    #[serde(rename = "edgegw.api")]
    api: Option<&'a str>,
    #[serde(rename = "edgegw.operation")]
    operation: Option<&'a str>,
    #[serde(rename = "edgegw.subscription")]
    subscription: Option<&'a str>,
    #[serde(rename = "edgegw.product")]
    product: Option<&'a str>,
    #[serde(rename = "http.response.status_code")]
    status: u16,
    #[serde(rename = "edgegw.refused_by")]
    refused_by: Option<&'a str>,
    #[serde(rename = "edgegw.backend.address")]
    backend: Option<&'a str>,
    #[serde(rename = "edgegw.backend.status_code")]
    backend_status: Option<u16>,
    #[serde(rename = "http.request.body.size")]
    bytes_in: u64,
    #[serde(rename = "http.response.body.size")]
    bytes_out: u64,
    #[serde(rename = "edgegw.duration_ms")]
    duration_ms: f64,
    #[serde(rename = "edgegw.backend.duration_ms")]
    backend_ms: Option<f64>,
    /// `trace` policies' events, when any wrote.
    #[serde(rename = "edgegw.trace", skip_serializing_if = "<[_]>::is_empty")]
    trace: &'a [crate::policy::trace::Event],
}

/// Milliseconds with microsecond precision.
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_line_uses_the_semantic_convention_names() {
        let line = Line {
            time: "2026-11-26T15:30:00.123Z".into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
            client_address: "::1".parse().unwrap(),
            method: "GET",
            scheme: "https",
            host: Some("api.example"),
            path: "/orders/\"42\"",
            query: Some("subscription-key=REDACTED&x=1"),
            protocol: "2",
            user_agent: Some("curl/8"),
            api: Some("orders"),
            operation: None,
            subscription: Some("s1"),
            product: Some("gold"),
            status: 429,
            refused_by: Some("rate-limit"),
            backend: None,
            backend_status: None,
            bytes_in: 0,
            bytes_out: 23,
            duration_ms: millis(Duration::from_micros(1234)),
            backend_ms: Some(millis(Duration::from_millis(1))),
            trace: &[],
        };
        let want = serde_json::json!({
            "time": "2026-11-26T15:30:00.123Z",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "client.address": "::1",
            "http.request.method": "GET",
            "url.scheme": "https",
            "server.address": "api.example",
            "url.path": "/orders/\"42\"",
            "url.query": "subscription-key=REDACTED&x=1",
            "network.protocol.version": "2",
            "user_agent.original": "curl/8",
            "edgegw.api": "orders",
            "edgegw.operation": null,
            "edgegw.subscription": "s1",
            "edgegw.product": "gold",
            "http.response.status_code": 429,
            "edgegw.refused_by": "rate-limit",
            "edgegw.backend.address": null,
            "edgegw.backend.status_code": null,
            "http.request.body.size": 0,
            "http.response.body.size": 23,
            "edgegw.duration_ms": 1.234,
            "edgegw.backend.duration_ms": 1.0,
        });
        assert_eq!(serde_json::to_string(&line).unwrap(), want.to_string());
    }
}
