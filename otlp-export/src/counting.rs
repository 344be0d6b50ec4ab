//! Counts of what the export sent, dropped and failed to send, kept by
//! thin wrappers around the SDK's exporters: the batch processor keeps
//! its own drop count private, so the queue's bound is enforced here
//! (`Counts::enqueue`) at the processor's own size, and the processor
//! itself never has to drop.

use std::{
    fmt::Write,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{SpanData, SpanExporter},
};

#[derive(Debug, Default)]
pub struct Counts {
    /// Spans queued and not yet exported or failed.
    queued: AtomicUsize,
    capacity: AtomicUsize,
    pub spans_exported: AtomicU64,
    /// Dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Lost in exports that failed.
    pub spans_failed: AtomicU64,
    pub metric_exports_failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Counts {
    pub(crate) fn set_capacity(&self, n: usize) {
        self.capacity.store(n, Ordering::Relaxed);
    }

    /// Takes a place in the queue, or counts a drop.
    pub(crate) fn enqueue(&self) -> bool {
        let before = self.queued.fetch_add(1, Ordering::Relaxed);
        if before >= self.capacity.load(Ordering::Relaxed) {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn exported(&self, n: usize, result: &OTelSdkResult) {
        self.queued.fetch_sub(n, Ordering::Relaxed);
        match result {
            Ok(()) => self.spans_exported.fetch_add(n as u64, Ordering::Relaxed),
            Err(e) => {
                self.failed(e.to_string());
                self.spans_failed.fetch_add(n as u64, Ordering::Relaxed)
            }
        };
    }

    pub(crate) fn failed(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error);
    }

    /// The last export error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `{prefix}_otlp_*` series in the Prometheus text format.
    pub fn render(&self, prefix: &str, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP {prefix}_otlp_spans_total Spans given to the OTLP exporter, by outcome (dropped: the queue was full; failed: the export failed).\n\
             # TYPE {prefix}_otlp_spans_total counter\n\
             {prefix}_otlp_spans_total{{outcome=\"exported\"}} {}\n\
             {prefix}_otlp_spans_total{{outcome=\"dropped\"}} {}\n\
             {prefix}_otlp_spans_total{{outcome=\"failed\"}} {}\n\
             # HELP {prefix}_otlp_metric_exports_failed_total Metric exports to the OTLP collector that failed.\n\
             # TYPE {prefix}_otlp_metric_exports_failed_total counter\n\
             {prefix}_otlp_metric_exports_failed_total {}\n",
            get(&self.spans_exported),
            get(&self.dropped),
            get(&self.spans_failed),
            get(&self.metric_exports_failed),
        );
    }
}

/// The span exporter, counting.
#[derive(Debug)]
pub struct Spans<E> {
    inner: E,
    counts: Arc<Counts>,
}

impl<E> Spans<E> {
    pub fn new(inner: E, counts: Arc<Counts>) -> Self {
        Spans { inner, counts }
    }
}

impl<E: SpanExporter> SpanExporter for Spans<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let result = self.inner.export(batch).await;
        self.counts.exported(n, &result);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
