//! Wall-clock helpers: Unix seconds and their RFC 3339 form (the
//! gateway's, so both sides print times alike).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Seconds since the Unix epoch, rounded up: an expiry computed from it
/// never comes earlier than asked.
pub fn now_ceil() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 + i64::from(d.subsec_nanos() > 0))
        .unwrap_or(0)
}

/// `2026-11-26T09:30:00Z` for Unix seconds (UTC).
pub use gateway_model::clock::rfc3339_secs as rfc3339;
