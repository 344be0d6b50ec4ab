//! What the gateway exports over OTLP (`[telemetry.otlp]`): one server
//! span per sampled request (built by `proxy::span` when the request ends)
//! and request metrics, through `edgegw_otlp`; plus the process metrics
//! and build information of `/metrics` (`process`).
//!
//! One `Otel` lives for the whole process (leaked once at start: every
//! request reads it without touching a reference count).

pub mod process;

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use edgegw_otlp::{Export, ServerSpan, SetupError};
use gateway_model::config::Otlp;
use opentelemetry::{
    InstrumentationScope, KeyValue,
    metrics::{Counter, Histogram},
};

use crate::status::{StatusFile, TelemetryView};

/// Upper bounds of the latency buckets, in seconds, of `/metrics` and
/// the exported duration histogram alike: up to the longest backend
/// timeout worth configuring (the default is 60 s), so that slow answers
/// are not all lumped into +Inf.
pub const BUCKETS: [f64; 18] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0,
];

pub struct Otel {
    export: Export,
    scope: InstrumentationScope,
    requests: Counter<u64>,
    duration: Histogram<f64>,
}

impl Otel {
    /// Starts the export (inside the runtime); lives until the process ends.
    pub fn start(config: &Otlp) -> Result<&'static Otel, SetupError> {
        let export = Export::start(config, "edgegw", env!("CARGO_PKG_VERSION"))?;
        let meter = export.meter("edgegw");
        let requests = meter
            .u64_counter("http.server.requests")
            .with_description("Requests answered, by API, operation and status code.")
            .build();
        let duration = meter
            .f64_histogram("http.server.request.duration")
            .with_unit("s")
            .with_description("Time from request head to the end of the response.")
            .with_boundaries(BUCKETS.to_vec())
            .build();
        let scope = InstrumentationScope::builder("edgegw")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        tracing::info!(
            endpoint = export.endpoint(),
            "exporting traces and metrics over OTLP"
        );
        Ok(Box::leak(Box::new(Otel {
            export,
            scope,
            requests,
            duration,
        })))
    }

    /// Whether this request's span is exported (parent-based ratio).
    pub fn sampled(&self, trace_id: [u8; 16], parent: Option<([u8; 8], bool)>) -> bool {
        self.export.sampled(trace_id, parent)
    }

    /// Queues an ended span; drops and counts it when the queue is full.
    pub fn submit(&self, span: ServerSpan) {
        self.export.submit(span, &self.scope);
    }

    /// Records one finished request in the exported metrics.
    pub fn request(&self, api: &str, operation: &str, status: u16, total: Duration) {
        let attributes = [
            KeyValue::new("edgegw.api", api.to_string()),
            KeyValue::new("edgegw.operation", operation.to_string()),
            KeyValue::new("http.response.status_code", i64::from(status)),
        ];
        self.requests.add(1, &attributes);
        self.duration.record(total.as_secs_f64(), &attributes);
    }

    /// `edgegw_otlp_*` series for `/metrics`.
    pub fn render_metrics(&self, out: &mut String) {
        self.export.render_metrics("edgegw", out);
    }

    /// Sends what is queued (at exit).
    pub fn shutdown(&self) {
        self.export.shutdown();
    }

    /// Writes the export's counts to the status file (`edgegw status`)
    /// every second while they change.
    pub fn publish_to(&'static self, status: Arc<StatusFile>) {
        tokio::spawn(async move {
            let mut shown = None;
            loop {
                let view = self.view();
                if shown.as_ref() != Some(&view) {
                    status.update(|s| s.telemetry = Some(view.clone()));
                    shown = Some(view);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    fn view(&self) -> TelemetryView {
        let c = self.export.counts();
        TelemetryView {
            endpoint: self.export.endpoint().to_string(),
            spans_exported: c.spans_exported.load(Ordering::Relaxed),
            spans_dropped: c.dropped.load(Ordering::Relaxed),
            spans_failed: c.spans_failed.load(Ordering::Relaxed),
            metric_exports_failed: c.metric_exports_failed.load(Ordering::Relaxed),
            last_error: c.last_error(),
        }
    }
}
