//! Metrics the caller keeps itself, read at each collection and pushed as
//! OTLP (HTTP/protobuf, cumulative since the start).
//!
//! Why not the SDK's instruments: they only export what was recorded into
//! them, one measurement at a time (the SDK 0.33 has neither a metric
//! producer nor an observable histogram), which puts attribute lookups and
//! locks shared by every core on each request. The gateway already counts
//! its requests for `/metrics`; this exports those same counts, so the
//! request path does no OpenTelemetry work at all.

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use opentelemetry::KeyValue;
use opentelemetry_http::HttpClient;
use opentelemetry_proto::tonic::{
    collector::metrics::v1::ExportMetricsServiceRequest,
    common::v1::InstrumentationScope,
    metrics::v1::{
        AggregationTemporality, Histogram, HistogramDataPoint, Metric as ProtoMetric,
        NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data as ProtoData,
        number_data_point,
    },
    resource::v1::Resource,
};
use prost::Message;

use crate::{client::OnRuntime, counting::Counts};

/// One metric as the caller keeps it: every series since the start.
pub struct Metric {
    pub name: &'static str,
    pub description: &'static str,
    pub unit: &'static str,
    pub data: Data,
}

pub enum Data {
    /// A monotonic count per attribute set.
    Counter(Vec<(Vec<KeyValue>, u64)>),
    /// Explicit-bucket histograms sharing `bounds`.
    Histogram {
        bounds: &'static [f64],
        points: Vec<(Vec<KeyValue>, HistogramPoint)>,
    },
}

pub struct HistogramPoint {
    /// One count per bound (values `<=` it and above the previous one),
    /// not cumulative; values above the last bound are in `count` only.
    pub bucket_counts: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

/// What a collection calls to read the caller's metrics.
pub type Collect = Box<dyn Fn() -> Vec<Metric> + Send + Sync>;

/// Pushes the caller's metrics to the collector.
pub(crate) struct Push {
    pub client: OnRuntime,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub resource: Resource,
    pub scope: InstrumentationScope,
    pub start: SystemTime,
    pub collect: Collect,
    pub counts: Arc<Counts>,
}

impl Push {
    /// Every `interval`, for as long as the process runs.
    pub async fn run(self: Arc<Self>, interval: Duration) {
        loop {
            tokio::time::sleep(interval).await;
            self.send().await;
        }
    }

    /// Collects and sends once; a failure is counted, never returned.
    pub async fn send(&self) {
        let body = encode(
            &self.resource,
            &self.scope,
            (self.collect)(),
            self.start,
            SystemTime::now(),
        );
        let mut request = http::Request::post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/x-protobuf");
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let outcome = match request.body(Bytes::from(body)) {
            Ok(request) => match self.client.send_bytes(request).await {
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err(format!(
                    "metrics export answered {}",
                    response.status().as_u16()
                )),
                Err(e) => Err(format!("metrics export failed: {e}")),
            },
            Err(e) => Err(format!("metrics export request: {e}")),
        };
        if let Err(e) = outcome {
            self.counts
                .metric_exports_failed
                .fetch_add(1, Ordering::Relaxed);
            self.counts.failed(e);
        }
    }
}

/// The OTLP request of one collection at `now`, of series counted since
/// `start`.
fn encode(
    resource: &Resource,
    scope: &InstrumentationScope,
    metrics: Vec<Metric>,
    start: SystemTime,
    now: SystemTime,
) -> Vec<u8> {
    let nanos = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    };
    let (start, now) = (nanos(start), nanos(now));
    let attributes = |kvs: &[KeyValue]| kvs.iter().map(Into::into).collect();
    let metrics = metrics
        .into_iter()
        .map(|m| ProtoMetric {
            name: m.name.into(),
            description: m.description.into(),
            unit: m.unit.into(),
            data: Some(match m.data {
                Data::Counter(points) => ProtoData::Sum(Sum {
                    data_points: points
                        .iter()
                        .map(|(kvs, n)| NumberDataPoint {
                            attributes: attributes(kvs),
                            start_time_unix_nano: start,
                            time_unix_nano: now,
                            value: Some(number_data_point::Value::AsInt(*n as i64)),
                            ..Default::default()
                        })
                        .collect(),
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                }),
                Data::Histogram { bounds, points } => ProtoData::Histogram(Histogram {
                    data_points: points
                        .into_iter()
                        .map(|(kvs, p)| {
                            let mut bucket_counts = p.bucket_counts;
                            let finite: u64 = bucket_counts.iter().sum();
                            bucket_counts.push(p.count.saturating_sub(finite));
                            HistogramDataPoint {
                                attributes: attributes(&kvs),
                                start_time_unix_nano: start,
                                time_unix_nano: now,
                                count: p.count,
                                sum: Some(p.sum),
                                bucket_counts,
                                explicit_bounds: bounds.to_vec(),
                                ..Default::default()
                            }
                        })
                        .collect(),
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                }),
            }),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource.clone()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope.clone()),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collection_encodes_cumulative_counters_and_histograms() {
        let kvs = vec![KeyValue::new("edgegw.api", "orders")];
        let metrics = vec![
            Metric {
                name: "requests",
                description: "",
                unit: "",
                data: Data::Counter(vec![(kvs.clone(), 7)]),
            },
            Metric {
                name: "duration",
                description: "",
                unit: "s",
                data: Data::Histogram {
                    bounds: &[0.1, 1.0],
                    points: vec![(
                        kvs,
                        HistogramPoint {
                            bucket_counts: vec![4, 2],
                            count: 7,
                            sum: 9.5,
                        },
                    )],
                },
            },
        ];
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let scope = InstrumentationScope {
            name: "test".into(),
            ..Default::default()
        };
        let body = encode(&Resource::default(), &scope, metrics, at(10), at(20));
        let req = ExportMetricsServiceRequest::decode(&body[..]).unwrap();
        let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
        let Some(ProtoData::Sum(sum)) = &metrics[0].data else {
            panic!("{metrics:?}")
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let p = &sum.data_points[0];
        assert_eq!(p.value, Some(number_data_point::Value::AsInt(7)));
        assert_eq!(
            (p.start_time_unix_nano, p.time_unix_nano),
            (10_000_000_000, 20_000_000_000)
        );
        let Some(ProtoData::Histogram(h)) = &metrics[1].data else {
            panic!("{metrics:?}")
        };
        let p = &h.data_points[0];
        // The overflow bucket holds what is above the last bound.
        assert_eq!(p.bucket_counts, [4, 2, 1]);
        assert_eq!(p.explicit_bounds, [0.1, 1.0]);
        assert_eq!((p.count, p.sum), (7, Some(9.5)));
        assert_eq!(metrics[1].unit, "s");
    }
}
