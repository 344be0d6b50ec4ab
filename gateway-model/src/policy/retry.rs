//! `retry` (backend section): when and how often the gateway sends a
//! request again.

use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use serde_yaml::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Statuses that trigger a retry (default 502, 503, 504).
    #[serde(default)]
    status_codes: Vec<u16>,
    /// Extra attempts after the first.
    count: u32,
    /// Milliseconds before the first retry (default 0).
    #[serde(default)]
    interval_ms: u64,
    /// Double the wait after every attempt.
    #[serde(default)]
    exponential: bool,
    /// Cap on the wait (default 30000).
    #[serde(default)]
    max_interval_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySpec {
    pub statuses: Vec<StatusCode>,
    /// Extra attempts after the first (1 to 10).
    pub count: u32,
    pub interval: Duration,
    pub exponential: bool,
    pub max_interval: Duration,
}

impl RetrySpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        if f.count == 0 || f.count > 10 {
            return Err("count must be between 1 and 10".into());
        }
        let codes = if f.status_codes.is_empty() {
            vec![502, 503, 504]
        } else {
            f.status_codes
        };
        let statuses = codes
            .into_iter()
            .map(super::status)
            .collect::<Result<_, _>>()?;
        Ok(RetrySpec {
            statuses,
            count: f.count,
            interval: Duration::from_millis(f.interval_ms),
            exponential: f.exponential,
            max_interval: Duration::from_millis(f.max_interval_ms.unwrap_or(30_000)),
        })
    }
}
