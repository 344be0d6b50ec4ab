//! OTLP export (HTTP/protobuf) shared by the gateway and the control plane.
//!
//! Spans are built by the caller once a request has ended (its ids are the
//! ones it already gave the backend in `traceparent`) and handed to
//! `Export::submit`, which never blocks: the SDK's `BatchSpanProcessor`
//! exports them from a thread of its own, and a span that finds the
//! bounded queue full is dropped and counted (`Counts`). Exports that
//! fail (collector down, slow or answering errors) are counted too.
//! Metrics are the caller's own counts, read and pushed periodically
//! (`metrics`): recording them costs the request path nothing here.
//!
//! The SDK's exporter threads have no tokio runtime; `client::OnRuntime`
//! runs each HTTP export on the process's runtime instead.

#![forbid(unsafe_code)]

mod client;
mod counting;
pub mod metrics;

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
    time::{Duration, SystemTime},
};

pub use counting::Counts;
use gateway_model::config::Otlp;
use opentelemetry::{
    Context, KeyValue,
    trace::{
        SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
    },
};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{
    Resource,
    trace::{
        BatchConfigBuilder, BatchSpanProcessor, Sampler, SamplingDecision, ShouldSample, SpanData,
        SpanEvents, SpanLinks, SpanProcessor,
    },
};

#[derive(Debug, thiserror::Error)]
#[error("telemetry.otlp: cannot set up the exporter for {endpoint}: {message}")]
pub struct SetupError {
    endpoint: String,
    message: String,
}

/// The process's OTLP export: spans and metrics.
pub struct Export {
    processor: BatchSpanProcessor,
    sampler: Sampler,
    counts: Arc<Counts>,
    endpoint: String,
    /// What `export_metrics` needs, kept from the settings.
    runtime: tokio::runtime::Handle,
    metrics_url: String,
    headers: Vec<(String, String)>,
    export_timeout: Duration,
    metrics_interval: Duration,
    resource: Resource,
    started: SystemTime,
    /// Set once the caller hands over its metrics.
    metrics: OnceLock<Arc<metrics::Push>>,
}

/// One ended server span, as the caller knows it.
pub struct ServerSpan {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The caller's span, when the request continued a trace.
    pub parent: Option<[u8; 8]>,
    pub name: String,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<KeyValue>,
    /// A 5xx answer: the span's status is an error.
    pub error: bool,
}

impl Export {
    /// Starts the exporter threads; must be called inside the tokio
    /// runtime that exports run on. `service` names the program
    /// (`service.name`, unless the settings name one).
    pub fn start(config: &Otlp, service: &str, version: &str) -> Result<Export, SetupError> {
        let fail = |message: String| SetupError {
            endpoint: config.endpoint.clone(),
            message,
        };
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| fail(format!("no async runtime: {e}")))?;
        let headers: HashMap<String, String> = config.headers.iter().cloned().collect();
        let counts = Arc::new(Counts::default());
        let resource = Resource::builder()
            .with_service_name(
                config
                    .service_name
                    .clone()
                    .unwrap_or_else(|| service.to_string()),
            )
            .with_attribute(KeyValue::new("service.version", version.to_string()))
            .build();

        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client::OnRuntime::new(
                runtime.clone(),
                config.export_timeout,
            ))
            .with_endpoint(config.traces_url())
            .with_timeout(config.export_timeout)
            .with_headers(headers)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let mut processor =
            BatchSpanProcessor::builder(counting::Spans::new(spans, counts.clone()))
                .with_batch_config(
                    BatchConfigBuilder::default()
                        .with_max_queue_size(config.queue_size)
                        .with_max_export_batch_size(config.queue_size.min(512))
                        .with_scheduled_delay(std::time::Duration::from_millis(500))
                        .build(),
                )
                .build();
        processor.set_resource(&resource);

        let sampler =
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sampling_ratio)));
        counts.set_capacity(config.queue_size);
        Ok(Export {
            processor,
            sampler,
            counts,
            endpoint: config.endpoint.clone(),
            runtime,
            metrics_url: config.metrics_url(),
            headers: config.headers.clone(),
            export_timeout: config.export_timeout,
            metrics_interval: config.metrics_interval,
            resource,
            started: SystemTime::now(),
            metrics: OnceLock::new(),
        })
    }

    /// The collector's base URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// What was sent, dropped and failed.
    pub fn counts(&self) -> &Arc<Counts> {
        &self.counts
    }

    /// Exports what `collect` reads every `metrics_interval` (and at
    /// shutdown), as metrics of `scope`; once per process.
    pub fn export_metrics(
        &self,
        scope: &opentelemetry::InstrumentationScope,
        collect: metrics::Collect,
    ) {
        let push = Arc::new(metrics::Push {
            client: client::OnRuntime::new(self.runtime.clone(), self.export_timeout),
            url: self.metrics_url.clone(),
            headers: self.headers.clone(),
            resource: (&self.resource).into(),
            scope: (scope, None).into(),
            start: self.started,
            collect,
            counts: self.counts.clone(),
        });
        if self.metrics.set(push.clone()).is_ok() {
            self.runtime.spawn(push.run(self.metrics_interval));
        }
    }

    /// Parent-based ratio sampling: a request that continues a trace
    /// follows its caller's flag, a new trace is kept at the ratio.
    pub fn sampled(&self, trace_id: [u8; 16], parent: Option<([u8; 8], bool)>) -> bool {
        let cx = match parent {
            Some((span, sampled)) => Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_bytes(trace_id),
                SpanId::from_bytes(span),
                if sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                },
                true,
                TraceState::NONE,
            )),
            None => Context::new(),
        };
        let result = self.sampler.should_sample(
            Some(&cx),
            TraceId::from_bytes(trace_id),
            "",
            &SpanKind::Server,
            &[],
            &[],
        );
        result.decision == SamplingDecision::RecordAndSample
    }

    /// Queues an ended span for export, or drops and counts it when the
    /// queue is full. Never blocks.
    pub fn submit(&self, span: ServerSpan, scope: &opentelemetry::InstrumentationScope) {
        if !self.counts.enqueue() {
            return;
        }
        self.processor.on_end(SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes(span.trace_id),
                SpanId::from_bytes(span.span_id),
                TraceFlags::SAMPLED,
                false,
                TraceState::NONE,
            ),
            parent_span_id: span.parent.map_or(SpanId::INVALID, SpanId::from_bytes),
            parent_span_is_remote: span.parent.is_some(),
            span_kind: SpanKind::Server,
            name: span.name.into(),
            start_time: span.start,
            end_time: span.end,
            attributes: span.attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: if span.error {
                Status::error("")
            } else {
                Status::Unset
            },
            instrumentation_scope: scope.clone(),
        });
    }

    /// Sends what is queued and the metrics' last values, and stops the
    /// threads (at exit; blocks, so not on an async task).
    pub fn shutdown(&self) {
        let _ = self.processor.shutdown();
        if let Some(push) = self.metrics.get() {
            self.runtime.block_on(push.send());
        }
    }

    /// The Prometheus text of the export's counters.
    pub fn render_metrics(&self, prefix: &str, out: &mut String) {
        self.counts.render(prefix, out);
    }
}

/// A fresh random id pair for a span that starts a trace or a hop.
pub fn random_ids() -> ([u8; 16], [u8; 8]) {
    use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
    let g = RandomIdGenerator::default();
    (g.new_trace_id().to_bytes(), g.new_span_id().to_bytes())
}

/// The trace id, parent span id and sampled flag of a valid version 00
/// `traceparent`.
pub fn parse_traceparent(v: &str) -> Option<([u8; 16], [u8; 8], bool)> {
    let mut parts = v.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00"
        || parts.next().is_some()
        || trace.len() != 32
        || span.len() != 16
        || flags.len() != 2
    {
        return None;
    }
    let lower = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !(lower(trace) && lower(span) && lower(flags)) {
        return None;
    }
    let trace = u128::from_str_radix(trace, 16).ok().filter(|t| *t != 0)?;
    let span = u64::from_str_radix(span, 16).ok().filter(|s| *s != 0)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace.to_be_bytes(), span.to_be_bytes(), flags & 1 == 1))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn traceparent_is_parsed_strictly() {
        let (t, s, sampled) =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(t[0], 0x4b);
        assert_eq!(s[7], 0xb7);
        assert!(sampled);
        for bad in [
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let c = Counts::default();
        c.set_capacity(1);
        assert!(c.enqueue());
        assert!(!c.enqueue());
        assert_eq!(c.dropped.load(Ordering::Relaxed), 1);
    }
}
