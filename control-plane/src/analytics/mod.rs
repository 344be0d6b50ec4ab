//! Request analytics of the fleet: batches the gateways send
//! (`POST /v1/gateway/analytics`, counted once per batch id), kept per
//! period as sent, rolled up into hours after `--analytics-minutes-for`,
//! deleted after `--analytics-retention`, and queried over
//! `GET /v1/analytics` and `GET /v1/analytics/drops` with percentiles
//! from the merged histograms (`gateway_model::analytics`).

pub mod ingest;
pub mod query;
pub mod rollup;

use std::sync::atomic::{AtomicI64, Ordering};

/// How long analytics are kept, and when their periods become hours.
#[derive(Debug)]
pub struct Settings {
    /// Seconds rows stay at the resolution they were sent with.
    pub minutes_for: i64,
    /// Seconds anything is kept (rows, hours, drops, batch ids).
    pub retention: i64,
    /// Unix seconds of the last rollup (run at most once a minute, by the
    /// ingest that finds it due).
    last_rollup: AtomicI64,
}

impl Settings {
    pub fn new(minutes_for: u64, retention: u64) -> Settings {
        Settings {
            minutes_for: minutes_for as i64,
            retention: retention as i64,
            last_rollup: AtomicI64::new(0),
        }
    }

    /// True (once) when a rollup is due at `now`.
    pub fn rollup_due(&self, now: i64) -> bool {
        let last = self.last_rollup.load(Ordering::Relaxed);
        now - last >= 60
            && self
                .last_rollup
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Rows as sent ('m', whatever the gateway's period) and rolled up ('h').
pub const SPAN_SENT: &str = "m";
pub const SPAN_HOUR: &str = "h";
