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
    Method, Uri,
    body::{Body, Frame, SizeHint},
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
    /// Only when the access log is on: the rest of the request's
    /// description costs nothing otherwise (boxed: the record is moved
    /// with the response, through every layer that returns it).
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
    /// Bandwidth quotas charged with bytes in + out when the call ends.
    pub charges: Vec<crate::policy::Charge>,
}

/// What only the access log needs about a request.
pub struct Logged {
    pub time: SystemTime,
    pub client_ip: std::net::IpAddr,
    pub method: Method,
    /// Shares the request's buffer: no copy of the path.
    pub uri: Uri,
}

/// The response body, which emits the record when it is dropped.
pub struct Observed {
    inner: ProxyBody,
    bytes_out: u64,
    record: Option<Record>,
    log: AccessLog,
    metrics: Recorder,
    _in_flight: InFlight,
}

impl Observed {
    pub fn new(
        inner: ProxyBody,
        record: Record,
        log: AccessLog,
        metrics: Recorder,
        in_flight: InFlight,
    ) -> Observed {
        Observed {
            inner,
            bytes_out: 0,
            record: Some(record),
            log,
            metrics,
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
        self.metrics.analytics(&crate::analytics::Finished {
            api: r.api.as_deref(),
            operation: r.operation.as_deref(),
            product: r.product.as_deref(),
            subscription: r.subscription.as_deref(),
            status: r.status,
            bytes_in,
            bytes_out: self.bytes_out,
            latency: total,
        });
        let Some(logged) = r.logged.filter(|_| self.log.enabled()) else {
            return;
        };
        self.log.write(&Line {
            time: crate::clock::rfc3339_millis(logged.time),
            client_ip: logged.client_ip,
            method: logged.method.as_str(),
            path: logged.uri.path(),
            api: r.api.as_deref(),
            operation: r.operation.as_deref(),
            status: r.status,
            bytes_in,
            bytes_out: self.bytes_out,
            duration_ms: millis(total),
            backend_ms: r.backend.map(millis),
            request_id: r.trace.trace_id(),
        });
    }
}

/// One access-log line, its fields in the order they are written.
#[derive(serde::Serialize)]
struct Line<'a> {
    time: String,
    client_ip: std::net::IpAddr,
    method: &'a str,
    path: &'a str,
    api: Option<&'a str>,
    operation: Option<&'a str>,
    status: u16,
    bytes_in: u64,
    bytes_out: u64,
    duration_ms: f64,
    backend_ms: Option<f64>,
    request_id: &'a str,
}

/// Milliseconds with microsecond precision.
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_line_is_the_json_it_always_was() {
        let line = Line {
            time: "2026-11-26T15:30:00.123Z".into(),
            client_ip: "::1".parse().unwrap(),
            method: "GET",
            path: "/orders/\"42\"",
            api: Some("orders"),
            operation: None,
            status: 200,
            bytes_in: 0,
            bytes_out: 23,
            duration_ms: millis(Duration::from_micros(1234)),
            backend_ms: Some(millis(Duration::from_millis(1))),
            request_id: "4bf92f3577b34da6a3ce929d0e0e4736",
        };
        // What the log wrote before it was typed: same keys, order, values.
        let dynamic = serde_json::json!({
            "time": "2026-11-26T15:30:00.123Z",
            "client_ip": "::1",
            "method": "GET",
            "path": "/orders/\"42\"",
            "api": "orders",
            "operation": null,
            "status": 200,
            "bytes_in": 0,
            "bytes_out": 23,
            "duration_ms": 1.234,
            "backend_ms": 1.0,
            "request_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        });
        assert_eq!(serde_json::to_string(&line).unwrap(), dynamic.to_string());
    }
}
