//! What the gateway exports over OTLP (`[telemetry.otlp]`): one server
//! span per sampled request (built by `proxy::span` when the request ends)
//! and request metrics, through `edgegw_otlp`; plus the process metrics
//! and build information of `/metrics` (`process`).
//!
//! The request metrics are the counts `/metrics` keeps, read when the
//! export collects (`admin::Metrics::otlp`): a request records itself
//! once, there.
//!
//! One `Otel` lives for the whole process (leaked once at start: every
//! request reads it without touching a reference count).

pub mod process;

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use edgegw_otlp::{Export, ServerSpan, SetupError, metrics::Collect};
use gateway_model::config::Otlp;
use opentelemetry::InstrumentationScope;

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
}

impl Otel {
    /// Starts the export (inside the runtime); lives until the process ends.
    pub fn start(config: &Otlp) -> Result<&'static Otel, SetupError> {
        let export = Export::start(config, "edgegw", env!("CARGO_PKG_VERSION"))?;
        let scope = InstrumentationScope::builder("edgegw")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        tracing::info!(
            endpoint = export.endpoint(),
            "exporting traces and metrics over OTLP"
        );
        Ok(Box::leak(Box::new(Otel { export, scope })))
    }

    /// Whether this request's span is exported (parent-based ratio).
    pub fn sampled(&self, trace_id: [u8; 16], parent: Option<([u8; 8], bool)>) -> bool {
        self.export.sampled(trace_id, parent)
    }

    /// Queues an ended span; drops and counts it when the queue is full.
    pub fn submit(&self, span: ServerSpan) {
        self.export.submit(span, &self.scope);
    }

    /// Exports the metrics `collect` reads when the export collects (the
    /// request counts of `/metrics`: `admin::Metrics::otlp`).
    pub fn export_metrics(&self, collect: Collect) {
        self.export.export_metrics(&self.scope, collect);
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
