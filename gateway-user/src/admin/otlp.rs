//! The request counts of `/metrics` in the shape the OTLP export sends
//! (`telemetry::Otel::export_metrics` collects them through
//! `Metrics::otlp`, so telemetry does not depend on admin).

use edgegw_otlp::metrics::{Data, HistogramPoint, Metric};
use opentelemetry::KeyValue;

use super::metrics::{BUCKETS, RequestSeries};

/// `http.server.requests` and `http.server.request.duration` by API,
/// operation and status code.
pub fn request_metrics(series: Vec<RequestSeries>) -> Vec<Metric> {
    let mut counts = Vec::with_capacity(series.len());
    let mut durations = Vec::with_capacity(series.len());
    for s in series {
        let attributes = vec![
            KeyValue::new("edgegw.api", s.api),
            KeyValue::new("edgegw.operation", s.operation),
            KeyValue::new("http.response.status_code", i64::from(s.status)),
        ];
        counts.push((attributes.clone(), s.durations.count()));
        durations.push((
            attributes,
            HistogramPoint {
                bucket_counts: s.durations.bucket_counts().to_vec(),
                count: s.durations.count(),
                sum: s.durations.sum(),
            },
        ));
    }
    vec![
        Metric {
            name: "http.server.requests",
            description: "Requests answered, by API, operation and status code.",
            unit: "",
            data: Data::Counter(counts),
        },
        Metric {
            name: "http.server.request.duration",
            description: "Time from request head to the end of the response.",
            unit: "s",
            data: Data::Histogram {
                bounds: &BUCKETS,
                points: durations,
            },
        },
    ]
}
