//! Process-wide counters and histograms, rendered in the Prometheus text
//! format. One `Metrics` lives for the whole process, across reloads.
//!
//! Per-request series are recorded into a shard per thread (each worker
//! takes only its own, uncontended lock: no cache line bounces between
//! cores) and summed when `/metrics` is scraped.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use gateway_common::Reason;
use thread_local::ThreadLocal;

use crate::datapath::ReasonTotals;

/// Why the proxy refused or closed a client connection or request itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rejection {
    HeaderTooLarge,
    HeaderReadTimeout,
    BodyTooLarge,
    IdleTimeout,
    MaxConnections,
    BadRequest,
    TlsHandshake,
    // What a request is, decided before routing (`proxy::request_checks`).
    PathInvalid,
    PathEscapesRoot,
    PathEncodedSlash,
    HostMissing,
    HostDuplicate,
    HostInvalid,
    HeaderUnderscore,
    MethodNotAllowed,
    UpgradeNotAllowed,
    /// A request body that could not be decoded (malformed chunked coding).
    BadBody,
}

impl Rejection {
    pub const ALL: [Rejection; 17] = [
        Rejection::HeaderTooLarge,
        Rejection::HeaderReadTimeout,
        Rejection::BodyTooLarge,
        Rejection::IdleTimeout,
        Rejection::MaxConnections,
        Rejection::BadRequest,
        Rejection::TlsHandshake,
        Rejection::PathInvalid,
        Rejection::PathEscapesRoot,
        Rejection::PathEncodedSlash,
        Rejection::HostMissing,
        Rejection::HostDuplicate,
        Rejection::HostInvalid,
        Rejection::HeaderUnderscore,
        Rejection::MethodNotAllowed,
        Rejection::UpgradeNotAllowed,
        // Request framing.
        Rejection::BadBody,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Rejection::HeaderTooLarge => "header_too_large",
            Rejection::HeaderReadTimeout => "header_read_timeout",
            Rejection::BodyTooLarge => "body_too_large",
            Rejection::IdleTimeout => "idle_timeout",
            Rejection::MaxConnections => "max_connections",
            Rejection::BadRequest => "bad_request",
            Rejection::TlsHandshake => "tls_handshake",
            Rejection::PathInvalid => "path_invalid",
            Rejection::PathEscapesRoot => "path_escapes_root",
            Rejection::PathEncodedSlash => "path_encoded_slash",
            Rejection::HostMissing => "host_missing",
            Rejection::HostDuplicate => "host_duplicate",
            Rejection::HostInvalid => "host_invalid",
            Rejection::HeaderUnderscore => "header_underscore",
            Rejection::MethodNotAllowed => "method_not_allowed",
            Rejection::UpgradeNotAllowed => "upgrade_not_allowed",
            // Request framing.
            Rejection::BadBody => "bad_body",
        }
    }
}

/// The latency buckets, shared with the OTLP export (defined there).
pub use crate::telemetry::BUCKETS;

/// Durations observed into `BUCKETS`: a count per bucket (one past the
/// last bound is counted in `count` only), the total count and sum.
#[derive(Clone, Default)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += s;
    }

    fn add(&mut self, other: &Histogram) {
        for (n, m) in self.counts.iter_mut().zip(other.counts) {
            *n += m;
        }
        self.count += other.count;
        self.sum += other.sum;
    }

    /// Observations per bucket of `BUCKETS`, not cumulative.
    pub fn bucket_counts(&self) -> &[u64; BUCKETS.len()] {
        &self.counts
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Seconds.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(self.counts) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// The durations of one operation's requests per status code (their
/// counts are the histograms' counts); a handful of codes, searched in
/// order.
type ByStatus = Vec<(u16, Histogram)>;

/// Counters and histograms of one API.
#[derive(Clone, Default)]
struct PerApi {
    /// operation -> status code -> durations.
    requests: BTreeMap<String, ByStatus>,
    backend: Histogram,
}

impl PerApi {
    fn add(&mut self, other: &PerApi) {
        for (op, statuses) in &other.requests {
            let sum = self.requests.entry(op.clone()).or_default();
            for (status, h) in statuses {
                match sum.iter_mut().find(|(s, _)| s == status) {
                    Some((_, mine)) => mine.add(h),
                    None => sum.push((*status, h.clone())),
                }
            }
        }
        self.backend.add(&other.backend);
    }

    /// The request durations of every operation and status.
    fn total(&self) -> Histogram {
        let mut total = Histogram::default();
        for (_, h) in self.requests.values().flatten() {
            total.add(h);
        }
        total
    }
}

/// Requests of one API and operation answered with one status code, since
/// the start: what `/metrics` shows summed by status class and the OTLP
/// export sends as it is.
pub struct RequestSeries {
    pub api: String,
    pub operation: String,
    pub status: u16,
    pub durations: Histogram,
}

/// api -> its series; looked up by `&str`, so the hot path allocates only
/// the first time an API, operation or status is seen on a thread.
type Shard = BTreeMap<String, PerApi>;

#[derive(Default)]
pub struct Metrics {
    /// One shard per recording thread; the lock is taken by its thread on
    /// every request and by a scrape, so it is practically never contended.
    shards: ThreadLocal<Arc<Mutex<Shard>>>,
    rejections: [AtomicU64; Rejection::ALL.len()],
    active_connections: AtomicI64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    /// Request headers with `_` in their name, not forwarded.
    underscore_headers_dropped: AtomicU64,
    /// The OTLP export, when configured (its counts go into `/metrics`).
    otel: Option<&'static crate::telemetry::Otel>,
    /// Request analytics, recorded with the metrics of each request;
    /// `None` when `[analytics] enabled = false`.
    pub analytics: Option<Arc<crate::analytics::Collector>>,
}

/// Records requests into one thread's shard. A request keeps the shard of
/// the thread it arrived on: cloning this touches a count no other core
/// writes, unlike the process-wide `Arc<Metrics>`.
pub struct Recorder(Arc<Mutex<Shard>>, Option<crate::analytics::ShardHandle>);

impl Recorder {
    /// The request analytics to record a finished request in, if on.
    pub fn analytics(&self) -> Option<&crate::analytics::ShardHandle> {
        self.1.as_ref()
    }

    /// Records one finished request.
    pub fn request(
        &self,
        api: &str,
        operation: &str,
        status: u16,
        total: Duration,
        backend: Option<Duration>,
    ) {
        let mut apis = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !apis.contains_key(api) {
            apis.insert(api.into(), PerApi::default());
        }
        let per_api = apis.get_mut(api).expect("inserted above");
        if !per_api.requests.contains_key(operation) {
            per_api.requests.insert(operation.into(), ByStatus::new());
        }
        let statuses = per_api.requests.get_mut(operation).expect("inserted above");
        match statuses.iter_mut().find(|(s, _)| *s == status) {
            Some((_, durations)) => durations.observe(total),
            None => {
                let mut durations = Histogram::default();
                durations.observe(total);
                statuses.push((status, durations));
            }
        }
        if let Some(b) = backend {
            per_api.backend.observe(b);
        }
    }
}

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn status_class(status: u16) -> usize {
    (usize::from(status / 100)).clamp(1, 5) - 1
}

impl Metrics {
    /// Metrics whose request series `otel` also exports (it reads them
    /// through `requests`), with request analytics recorded when
    /// `analytics` is on.
    pub fn new(otel: Option<&'static crate::telemetry::Otel>, analytics: bool) -> Metrics {
        Metrics {
            otel,
            analytics: analytics.then(Default::default),
            ..Metrics::default()
        }
    }

    /// The OTLP export, if any.
    pub fn otel(&self) -> Option<&'static crate::telemetry::Otel> {
        self.otel
    }

    /// Records one finished request.
    pub fn request(
        &self,
        api: &str,
        operation: &str,
        status: u16,
        total: Duration,
        backend: Option<Duration>,
    ) {
        self.recorder()
            .request(api, operation, status, total, backend);
    }

    /// The calling thread's shard, to record requests into later.
    pub fn recorder(&self) -> Recorder {
        Recorder(
            self.shards.get_or_default().clone(),
            self.analytics.as_ref().map(|a| a.shard()),
        )
    }

    pub fn reject(&self, why: Rejection) {
        self.rejections[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// `n` request headers with `_` in their name were not forwarded.
    pub fn underscore_headers_dropped(&self, n: usize) {
        self.underscore_headers_dropped
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn connection_opened(&self) {
        self.active_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.active_connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn reloaded(&self, ok: bool) {
        let c = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The per-API series of every thread, summed.
    fn per_api(&self) -> Shard {
        let mut sum = Shard::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for (api, m) in shard.iter() {
                match sum.get_mut(api) {
                    Some(s) => s.add(m),
                    None => {
                        sum.insert(api.clone(), m.clone());
                    }
                }
            }
        }
        sum
    }

    /// The request series as OTLP metrics (read when the export collects).
    pub fn otlp(&self) -> Vec<edgegw_otlp::metrics::Metric> {
        super::otlp::request_metrics(self.requests())
    }

    /// Every (api, operation, status) series so far, summed over threads
    /// (read when the OTLP export collects).
    pub fn requests(&self) -> Vec<RequestSeries> {
        let mut series = Vec::new();
        for (api, m) in self.per_api() {
            for (operation, statuses) in m.requests {
                for (status, durations) in statuses {
                    series.push(RequestSeries {
                        api: api.clone(),
                        operation: operation.clone(),
                        status,
                        durations,
                    });
                }
            }
        }
        series
    }

    /// The Prometheus text exposition; `xdp` holds the datapath counters
    /// when XDP is attached.
    pub fn render(&self, xdp: Option<&[(Reason, ReasonTotals)]>) -> String {
        let mut out = String::with_capacity(4096);
        {
            let apis = self.per_api();
            out.push_str("# HELP edgegw_requests_total Requests answered, by API, operation and status class.\n# TYPE edgegw_requests_total counter\n");
            for (api, m) in apis.iter() {
                for (op, statuses) in &m.requests {
                    let mut classes = [0u64; 5];
                    for (status, h) in statuses {
                        classes[status_class(*status)] += h.count;
                    }
                    for (class, n) in STATUS_CLASSES.iter().zip(classes) {
                        if n > 0 {
                            let _ = writeln!(
                                out,
                                "edgegw_requests_total{{api=\"{}\",operation=\"{}\",status=\"{class}\"}} {n}",
                                escape(api),
                                escape(op)
                            );
                        }
                    }
                }
            }
            out.push_str("# HELP edgegw_request_duration_seconds Time from request head to the end of the response.\n# TYPE edgegw_request_duration_seconds histogram\n");
            for (api, m) in apis.iter() {
                let labels = format!("api=\"{}\"", escape(api));
                m.total()
                    .render(&mut out, "edgegw_request_duration_seconds", &labels);
            }
            out.push_str("# HELP edgegw_backend_duration_seconds Time until the backend's response head.\n# TYPE edgegw_backend_duration_seconds histogram\n");
            for (api, m) in apis.iter().filter(|(_, m)| m.backend.count > 0) {
                let labels = format!("api=\"{}\"", escape(api));
                m.backend
                    .render(&mut out, "edgegw_backend_duration_seconds", &labels);
            }
        }
        out.push_str("# HELP edgegw_active_connections Client connections open now.\n# TYPE edgegw_active_connections gauge\n");
        let _ = writeln!(
            out,
            "edgegw_active_connections {}",
            self.active_connections.load(Ordering::Relaxed)
        );
        out.push_str("# HELP edgegw_rejections_total Requests or connections the proxy refused, by reason.\n# TYPE edgegw_rejections_total counter\n");
        for r in Rejection::ALL {
            let _ = writeln!(
                out,
                "edgegw_rejections_total{{reason=\"{}\"}} {}",
                r.name(),
                self.rejections[r as usize].load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP edgegw_request_headers_dropped_total Request headers not forwarded, by reason.\n# TYPE edgegw_request_headers_dropped_total counter\n");
        let _ = writeln!(
            out,
            "edgegw_request_headers_dropped_total{{reason=\"underscore\"}} {}",
            self.underscore_headers_dropped.load(Ordering::Relaxed)
        );
        out.push_str("# HELP edgegw_config_reloads_total Configuration reloads, by result.\n# TYPE edgegw_config_reloads_total counter\n");
        let _ = writeln!(
            out,
            "edgegw_config_reloads_total{{result=\"ok\"}} {}\nedgegw_config_reloads_total{{result=\"rejected\"}} {}",
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed)
        );
        crate::telemetry::process::render(&mut out);
        if let Some(otel) = self.otel {
            otel.render_metrics(&mut out);
        }
        if let Some(xdp) = xdp {
            out.push_str("# HELP edgegw_xdp_packets_total Packets seen by the XDP program, by verdict reason.\n# TYPE edgegw_xdp_packets_total counter\n");
            for (reason, t) in xdp {
                let _ = writeln!(
                    out,
                    "edgegw_xdp_packets_total{{reason=\"{}\"}} {}",
                    reason.name(),
                    t.packets
                );
            }
            out.push_str("# HELP edgegw_xdp_bytes_total Bytes seen by the XDP program, by verdict reason.\n# TYPE edgegw_xdp_bytes_total counter\n");
            for (reason, t) in xdp {
                let _ = writeln!(
                    out,
                    "edgegw_xdp_bytes_total{{reason=\"{}\"}} {}",
                    reason.name(),
                    t.bytes
                );
            }
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_histograms_and_rejections() {
        let m = Metrics::default();
        m.request(
            "orders",
            "get",
            200,
            Duration::from_millis(3),
            Some(Duration::from_millis(2)),
        );
        m.request("orders", "get", 503, Duration::from_secs(9), None);
        m.reject(Rejection::BodyTooLarge);
        let text = m.render(None);
        assert!(
            text.contains(
                "edgegw_requests_total{api=\"orders\",operation=\"get\",status=\"2xx\"} 1"
            )
        );
        assert!(
            text.contains(
                "edgegw_requests_total{api=\"orders\",operation=\"get\",status=\"5xx\"} 1"
            )
        );
        assert!(
            text.contains("edgegw_request_duration_seconds_bucket{api=\"orders\",le=\"0.005\"} 1")
        );
        assert!(
            text.contains("edgegw_request_duration_seconds_bucket{api=\"orders\",le=\"+Inf\"} 2")
        );
        assert!(text.contains("edgegw_backend_duration_seconds_count{api=\"orders\"} 1"));
        assert!(text.contains("edgegw_rejections_total{reason=\"body_too_large\"} 1"));
        assert!(!text.contains("edgegw_xdp"));
        // The 9 s request is in a bucket below +Inf: buckets reach 300 s.
        assert!(
            text.contains("edgegw_request_duration_seconds_bucket{api=\"orders\",le=\"10\"} 2")
        );
        assert!(text.contains("edgegw_build_info{version="));
        assert!(text.contains("process_resident_memory_bytes "));
    }

    #[test]
    fn requests_are_kept_per_status_code_and_shown_per_class() {
        let m = Metrics::default();
        for (status, ms) in [(200, 1), (200, 3), (204, 1), (404, 700)] {
            m.request("orders", "get", status, Duration::from_millis(ms), None);
        }
        let series: Vec<(String, String, u16, u64)> = m
            .requests()
            .into_iter()
            .map(|s| (s.api, s.operation, s.status, s.durations.count()))
            .collect();
        let orders = |status, n| ("orders".to_string(), "get".to_string(), status, n);
        assert_eq!(series, [orders(200, 2), orders(204, 1), orders(404, 1)]);
        let ok = &m.requests()[0].durations;
        // 1 ms and 3 ms: the buckets up to 1 ms and up to 5 ms.
        assert_eq!(ok.bucket_counts()[1], 1);
        assert_eq!(ok.bucket_counts()[3], 1);
        assert!((ok.sum() - 0.004).abs() < 1e-9);
        let text = m.render(None);
        for line in [
            "edgegw_requests_total{api=\"orders\",operation=\"get\",status=\"2xx\"} 3",
            "edgegw_requests_total{api=\"orders\",operation=\"get\",status=\"4xx\"} 1",
            "edgegw_request_duration_seconds_count{api=\"orders\"} 4",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }

    #[test]
    fn series_recorded_on_several_threads_are_summed() {
        let m = Metrics::default();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let m = &m;
                s.spawn(move || {
                    for _ in 0..100 {
                        m.request("orders", "get", 200, Duration::from_millis(1), None);
                    }
                    // Each thread also has a series of its own.
                    m.request(
                        &format!("api{t}"),
                        "-",
                        404,
                        Duration::from_secs(2),
                        Some(Duration::from_secs(1)),
                    );
                });
            }
        });
        // And the scraping thread records too.
        m.request("orders", "get", 503, Duration::from_millis(1), None);
        let text = m.render(None);
        for line in [
            "edgegw_requests_total{api=\"orders\",operation=\"get\",status=\"2xx\"} 400",
            "edgegw_requests_total{api=\"orders\",operation=\"get\",status=\"5xx\"} 1",
            "edgegw_requests_total{api=\"api3\",operation=\"-\",status=\"4xx\"} 1",
            "edgegw_request_duration_seconds_bucket{api=\"orders\",le=\"0.001\"} 401",
            "edgegw_request_duration_seconds_count{api=\"orders\"} 401",
            "edgegw_request_duration_seconds_sum{api=\"api0\"} 2",
            "edgegw_backend_duration_seconds_count{api=\"api2\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        // APIs come out once each, in name order.
        assert_eq!(text.matches("api=\"orders\",operation").count(), 2);
        assert!(!text.contains("edgegw_backend_duration_seconds_count{api=\"orders\"}"));
        let a0 = text.find("api=\"api0\"").unwrap();
        assert!(
            a0 < text.find("api=\"api3\"").unwrap() && a0 < text.find("api=\"orders\"").unwrap()
        );
    }
}
