//! Request analytics as gateways send them to the control plane
//! (`POST /v1/gateway/analytics`): one batch per gateway and period
//! (a minute by default), rows keyed by API, operation, product,
//! subscription and status class, and the XDP drops of the period.
//!
//! Latencies go into a histogram with fixed bucket bounds shared by both
//! sides, so histograms of any gateways and periods merge by adding their
//! counts, and percentiles come from the merged counts.

use serde::{Deserialize, Serialize};

/// Upper bounds of the latency buckets, in milliseconds; a last bucket
/// holds everything slower. They cover the default backend timeout (60 s).
/// Append-only in meaning: the control plane merges stored histograms of
/// older gateways with these.
pub const BUCKET_BOUNDS_MS: [u64; 18] = [
    1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 1000, 2000, 5000, 10_000, 20_000, 30_000, 60_000,
    120_000,
];

/// Buckets of a histogram: one per bound and the overflow bucket.
pub const BUCKETS: usize = BUCKET_BOUNDS_MS.len() + 1;

/// The most rows one batch may carry.
pub const MAX_ROWS: usize = 20_000;
/// The longest name (API, operation, product, subscription, reason, source).
pub const MAX_NAME: usize = 256;
/// The largest count of one row: totals stay far from the i64 of the store.
pub const MAX_COUNT: u64 = 1 << 40;
/// The most dropped sources one batch reports.
pub const MAX_SOURCES: usize = 100;

/// A latency histogram with the fixed buckets of `BUCKET_BOUNDS_MS`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Histogram(pub Vec<u64>);

impl Default for Histogram {
    fn default() -> Self {
        Histogram(vec![0; BUCKETS])
    }
}

impl Histogram {
    /// The bucket of a latency in microseconds.
    pub fn bucket(micros: u64) -> usize {
        BUCKET_BOUNDS_MS
            .iter()
            .position(|&ms| micros <= ms * 1000)
            .unwrap_or(BUCKET_BOUNDS_MS.len())
    }

    pub fn observe_micros(&mut self, micros: u64) {
        self.0[Self::bucket(micros)] += 1;
    }

    /// Adds `other`'s counts (histograms of any gateway or period).
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            *mine += theirs;
        }
    }

    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The `q` quantile (0 < q <= 1) in milliseconds: the upper bound of
    /// the bucket holding it (the overflow bucket reports the last bound).
    /// None when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, n) in self.0.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let bound = BUCKET_BOUNDS_MS.len() - 1;
                return Some(BUCKET_BOUNDS_MS[i.min(bound)]);
            }
        }
        None
    }

    /// The counts as stored: comma-separated.
    pub fn to_text(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(u64::to_string).collect();
        parts.join(",")
    }

    /// Reads `to_text`'s form; fewer buckets (an older bound list) are
    /// padded with zeros.
    pub fn from_text(text: &str) -> Option<Histogram> {
        let mut counts: Vec<u64> = text
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        if counts.len() > BUCKETS {
            return None;
        }
        counts.resize(BUCKETS, 0);
        Some(Histogram(counts))
    }
}

/// The status class of an HTTP status: 1 to 5 (`2` for 2xx).
pub fn status_class(status: u16) -> u8 {
    (status / 100).clamp(1, 5) as u8
}

/// One period's counts for one (API, operation, product, subscription,
/// status class). Names are "" when there is none (a request that matched
/// no API, a call without a subscription).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub api: String,
    pub operation: String,
    pub product: String,
    pub subscription: String,
    /// 1 to 5.
    pub status_class: u8,
    pub requests: u64,
    /// Requests the gateway or the backend failed (status 5xx).
    pub errors: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Total latency, client request to the end of the response body.
    pub latency: Histogram,
}

impl Row {
    /// Adds `other`'s counts (same key).
    pub fn merge(&mut self, other: &Row) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.latency.merge(&other.latency);
    }
}

/// Packets the XDP program dropped for one reason within the period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drops {
    /// A reason as `edgegw drops` names it, e.g. "rate_limited".
    pub reason: String,
    pub packets: u64,
}

/// A source whose packets XDP dropped within the period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DroppedSource {
    /// An IPv4 address or an IPv6 prefix, as `edgegw top` shows it.
    pub source: String,
    pub packets: u64,
}

/// What a gateway sends for one period.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Unique per gateway: the gateway's instance, the period and a
    /// sequence number. The control plane counts a batch id once.
    pub id: String,
    /// Period start, Unix seconds, a multiple of `period_secs`.
    pub start: i64,
    /// Period length in seconds (60 unless the node says otherwise).
    pub period_secs: u32,
    #[serde(default)]
    pub rows: Vec<Row>,
    #[serde(default)]
    pub drops: Vec<Drops>,
    /// The sources dropped most within the period, most first.
    #[serde(default)]
    pub top_dropped_sources: Vec<DroppedSource>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.drops.is_empty() && self.top_dropped_sources.is_empty()
    }

    /// Checks what a well-behaved gateway sends; the first problem, naming
    /// the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.id.is_empty() || self.id.len() > 128 {
            return Err("id must be 1 to 128 characters".into());
        }
        if self.period_secs == 0 || self.period_secs > 3600 {
            return Err(format!(
                "period_secs: {} is out of range; use 1 to 3600",
                self.period_secs
            ));
        }
        if self.start < 0 || self.start % i64::from(self.period_secs) != 0 {
            return Err("start must be a Unix time that is a multiple of period_secs".into());
        }
        if self.rows.len() > MAX_ROWS {
            return Err(format!("rows: more than {MAX_ROWS}; send smaller batches"));
        }
        if self.top_dropped_sources.len() > MAX_SOURCES {
            return Err(format!("top_dropped_sources: more than {MAX_SOURCES}"));
        }
        let name = |field: String, value: &str| {
            if value.len() > MAX_NAME {
                Err(format!("{field}: longer than {MAX_NAME} characters"))
            } else {
                Ok(())
            }
        };
        let count = |field: String, value: u64| {
            if value > MAX_COUNT {
                Err(format!("{field}: {value} is larger than {MAX_COUNT}"))
            } else {
                Ok(())
            }
        };
        for (i, r) in self.rows.iter().enumerate() {
            for (field, value) in [
                ("api", &r.api),
                ("operation", &r.operation),
                ("product", &r.product),
                ("subscription", &r.subscription),
            ] {
                name(format!("rows[{i}].{field}"), value)?;
            }
            if !(1..=5).contains(&r.status_class) {
                return Err(format!("rows[{i}].status_class must be 1 to 5"));
            }
            for (field, value) in [
                ("requests", r.requests),
                ("bytes_in", r.bytes_in),
                ("bytes_out", r.bytes_out),
            ] {
                count(format!("rows[{i}].{field}"), value)?;
            }
            if r.errors > r.requests {
                return Err(format!("rows[{i}].errors exceeds requests"));
            }
            if r.latency.0.len() != BUCKETS {
                return Err(format!(
                    "rows[{i}].latency must have {BUCKETS} buckets (the bounds of gateway_model::analytics)"
                ));
            }
            if r.latency.count() != r.requests {
                return Err(format!(
                    "rows[{i}].latency counts {} requests, requests says {}",
                    r.latency.count(),
                    r.requests
                ));
            }
        }
        for (i, d) in self.drops.iter().enumerate() {
            name(format!("drops[{i}].reason"), &d.reason)?;
            if d.reason.is_empty() {
                return Err(format!("drops[{i}].reason is empty"));
            }
            count(format!("drops[{i}].packets"), d.packets)?;
        }
        for (i, s) in self.top_dropped_sources.iter().enumerate() {
            name(format!("top_dropped_sources[{i}].source"), &s.source)?;
            count(format!("top_dropped_sources[{i}].packets"), s.packets)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(latencies_ms: &[u64]) -> Histogram {
        let mut h = Histogram::default();
        for ms in latencies_ms {
            h.observe_micros(ms * 1000);
        }
        h
    }

    #[test]
    fn buckets_are_inclusive_upper_bounds() {
        assert_eq!(Histogram::bucket(0), 0);
        assert_eq!(Histogram::bucket(1000), 0);
        assert_eq!(Histogram::bucket(1001), 1);
        assert_eq!(Histogram::bucket(60_000_000), 16);
        assert_eq!(Histogram::bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn merged_histograms_give_the_percentiles_of_all_requests() {
        // 90 fast requests on one gateway, 10 slow on another.
        let mut a = hist(&[3; 90]);
        let b = hist(&[700; 10]);
        a.merge(&b);
        assert_eq!(a.count(), 100);
        assert_eq!(a.quantile_ms(0.5), Some(5));
        assert_eq!(a.quantile_ms(0.90), Some(5));
        assert_eq!(a.quantile_ms(0.91), Some(1000));
        assert_eq!(a.quantile_ms(0.99), Some(1000));
        assert_eq!(Histogram::default().quantile_ms(0.5), None);
        // Beyond the last bound: the last bound.
        assert_eq!(hist(&[500_000]).quantile_ms(0.5), Some(120_000));
    }

    #[test]
    fn histograms_round_trip_as_text_and_pad_older_bounds() {
        let h = hist(&[1, 7, 7, 70_000]);
        assert_eq!(Histogram::from_text(&h.to_text()), Some(h));
        let short = Histogram::from_text("1,2").unwrap();
        assert_eq!(short.0.len(), BUCKETS);
        assert_eq!(short.count(), 3);
        assert_eq!(Histogram::from_text("x"), None);
    }

    #[test]
    fn batches_name_their_first_problem() {
        let row = Row {
            api: "orders".into(),
            status_class: 2,
            requests: 2,
            latency: hist(&[1, 2]),
            ..Row::default()
        };
        let ok = Batch {
            id: "i-60-1".into(),
            start: 120,
            period_secs: 60,
            rows: vec![row.clone()],
            ..Batch::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: &dyn Fn(&mut Batch)| {
            let mut b = ok.clone();
            f(&mut b);
            b.validate().unwrap_err()
        };
        assert!(bad(&|b| b.start = 61).contains("multiple of period_secs"));
        assert!(bad(&|b| b.id.clear()).contains("id must be"));
        assert!(bad(&|b| b.rows[0].status_class = 6).contains("rows[0].status_class"));
        assert!(bad(&|b| b.rows[0].errors = 3).contains("errors exceeds"));
        assert!(bad(&|b| b.rows[0].requests = 3).contains("latency counts 2"));
        assert!(bad(&|b| b.rows[0].latency.0.pop().map(drop).unwrap()).contains("buckets"));
        assert!(bad(&|b| b.rows[0].api = "a".repeat(300)).contains("rows[0].api"));
    }
}
