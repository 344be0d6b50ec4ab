//! Request analytics (`docs/analytics.md`): every finished request is
//! recorded per thread (`collect`); at the end of each period (a minute
//! by default) the roller merges them with the XDP drops of the period
//! into one batch, written to the on-disk `outbox`; the sync task
//! (`sync::analytics`) sends the outbox to the control plane, oldest
//! first, deleting a batch only once it was accepted.

mod collect;
pub mod outbox;
mod xdp;

pub use collect::{Collector, Finished, ShardHandle};

use std::{
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use gateway_model::analytics::Batch;

use tokio::sync::Notify;

use crate::{config::Analytics as Settings, datapath::PinDir, status::StatusFile};

/// The analytics of this node: collector, roller state, outbox, counters.
pub struct Analytics {
    pub collector: Arc<Collector>,
    pub period: Duration,
    /// For a managed gateway only.
    pub outbox: Option<outbox::Outbox>,
    /// Unique to this process: batch ids are `<instance>-<start>-<seq>`.
    instance: String,
    seq: AtomicU64,
    drops: Mutex<xdp::Drops>,
    pub sent: AtomicU64,
    pub duplicates: AtomicU64,
    /// Refused by the control plane (4xx): not sent again.
    pub refused: AtomicU64,
    /// Dropped because the outbox was full.
    pub dropped: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    /// Wakes the sender when a batch was written.
    pub written: Notify,
    status: OnceLock<Arc<StatusFile>>,
}

// The view lives with the status file, which must not depend on analytics.
pub use crate::status::AnalyticsView;

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Analytics {
    /// The outbox is opened (created) for a managed gateway; an outbox
    /// that cannot be created is an error naming the directory.
    pub fn new(
        settings: &Settings,
        collector: Arc<Collector>,
        xdp: Option<PinDir>,
    ) -> anyhow::Result<Analytics> {
        let outbox = match &settings.outbox_dir {
            Some(dir) => Some(
                outbox::Outbox::open(dir, settings.outbox_max_bytes).map_err(|e| {
                    anyhow::anyhow!(
                        "analytics.outbox_dir {}: {e}; make it writable or choose another",
                        dir.display()
                    )
                })?,
            ),
            None => None,
        };
        Ok(Analytics {
            collector,
            period: settings.period,
            outbox,
            instance: format!("{}x{}", std::process::id(), now_secs()),
            seq: AtomicU64::new(0),
            drops: Mutex::new(xdp::Drops::new(xdp)),
            sent: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_error: Mutex::new(None),
            written: Notify::new(),
            status: OnceLock::new(),
        })
    }

    fn period_secs(&self) -> i64 {
        self.period.as_secs().max(1) as i64
    }

    /// Start of the period `t` falls in.
    pub fn period_start(&self, t: i64) -> i64 {
        t - t.rem_euclid(self.period_secs())
    }

    /// Closes the period starting at `start`: what was recorded since the
    /// last roll, and the drops since, become one batch in the outbox.
    pub fn roll(&self, start: i64) {
        let rows = self.collector.take();
        let (drops, top_dropped_sources) = self
            .drops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .since_last();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let batch = Batch {
            id: format!("{}-{start}-{seq}", self.instance),
            start,
            period_secs: self.period_secs() as u32,
            rows,
            drops,
            top_dropped_sources,
        };
        let Some(outbox) = &self.outbox else {
            return;
        };
        if batch.is_empty() {
            return;
        }
        match outbox.push(&batch) {
            Ok(0) => {}
            Ok(n) => {
                self.dropped.fetch_add(n, Ordering::Relaxed);
                tracing::warn!(
                    dropped = n,
                    max_bytes = outbox.max_bytes(),
                    dir = %outbox.dir().display(),
                    "analytics outbox full: the oldest batches were dropped (raise analytics.outbox_max_bytes, or bring the control plane back)"
                );
            }
            Err(e) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                self.set_error(format!(
                    "writing the analytics outbox {}: {e}; the batch was dropped",
                    outbox.dir().display()
                ));
            }
        }
        self.publish();
        self.written.notify_one();
    }

    /// Rolls at every period's end until the process ends.
    pub async fn run(self: Arc<Self>) {
        loop {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let period = self.period.as_millis().max(1) as u64;
            let millis = now.as_millis() as u64;
            let next = millis - millis % period + period;
            tokio::time::sleep(Duration::from_millis(next - millis)).await;
            // The period that just ended.
            self.roll((next / 1000) as i64 - self.period_secs());
        }
    }

    /// At shutdown, after the drain: the period in progress is written
    /// too (a batch of its own; the control plane adds them up).
    pub fn flush(&self) {
        self.roll(self.period_start(now_secs()));
    }

    pub fn set_error(&self, message: String) {
        {
            let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
            // A failure repeated on every retry is logged once; status
            // keeps showing it.
            if last.as_deref() != Some(message.as_str()) {
                tracing::warn!("{message}");
            }
            *last = Some(message);
        }
        self.publish();
    }

    pub fn clear_error(&self) {
        let had = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some();
        if had {
            self.publish();
        }
    }

    pub fn view(&self) -> AnalyticsView {
        let usage = self.outbox.as_ref().map(|o| o.usage()).unwrap_or_default();
        AnalyticsView {
            period_secs: self.period.as_secs(),
            outbox_dir: self.outbox.as_ref().map(|o| o.dir().display().to_string()),
            outbox_batches: usage.batches,
            outbox_bytes: usage.bytes,
            outbox_max_bytes: self.outbox.as_ref().map_or(0, |o| o.max_bytes()),
            sent_batches: self.sent.load(Ordering::Relaxed),
            duplicate_batches: self.duplicates.load(Ordering::Relaxed),
            refused_batches: self.refused.load(Ordering::Relaxed),
            dropped_batches: self.dropped.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// From now on, changes are written to `status` (`edgegw status`).
    pub fn publish_to(&self, status: Arc<StatusFile>) {
        let _ = self.status.set(status);
        self.publish();
    }

    pub fn publish(&self) {
        if let Some(status) = self.status.get() {
            let view = self.view();
            status.update(|s| s.analytics = Some(view));
        }
    }

    /// The period in progress, for the admin listener's `/analytics`
    /// (`edgegw analytics`).
    pub fn current(&self) -> serde_json::Value {
        let start = self.period_start(now_secs());
        let rows: Vec<serde_json::Value> = self
            .collector
            .peek()
            .into_iter()
            .map(|r| {
                serde_json::json!({
                    "api": r.api,
                    "operation": r.operation,
                    "product": r.product,
                    "subscription": r.subscription,
                    "status_class": format!("{}xx", r.status_class),
                    "requests": r.requests,
                    "errors": r.errors,
                    "bytes_in": r.bytes_in,
                    "bytes_out": r.bytes_out,
                    "p50_ms": r.latency.quantile_ms(0.5),
                    "p95_ms": r.latency.quantile_ms(0.95),
                    "p99_ms": r.latency.quantile_ms(0.99),
                })
            })
            .collect();
        serde_json::json!({
            "start": start,
            "period_secs": self.period.as_secs(),
            "rows": rows,
            "sending": self.view(),
        })
    }

    /// Prometheus lines of the sending counters.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let v = self.view();
        for (name, help, value) in [
            (
                "edgegw_analytics_batches_sent_total",
                "Analytics batches the control plane accepted.",
                v.sent_batches,
            ),
            (
                "edgegw_analytics_batches_refused_total",
                "Analytics batches the control plane refused (4xx); not sent again.",
                v.refused_batches,
            ),
            (
                "edgegw_analytics_batches_dropped_total",
                "Analytics batches dropped because the outbox was full or not writable.",
                v.dropped_batches,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        for (name, help, value) in [
            (
                "edgegw_analytics_outbox_batches",
                "Analytics batches waiting in the outbox.",
                v.outbox_batches,
            ),
            (
                "edgegw_analytics_outbox_bytes",
                "Bytes of the analytics outbox.",
                v.outbox_bytes,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
    }
}
