//! `retry` (backend section): sends the request again while the backend's
//! answer matches the condition (listed statuses, or a refused connection),
//! up to `count` more times, waiting `interval_ms` between attempts
//! (doubled each time with `exponential`, capped by `max_interval_ms`).
//! Only requests without a body are retried: a streamed body cannot be
//! sent twice.

use std::{future::Future, time::Duration};

use hyper::StatusCode;
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

#[derive(Debug)]
pub struct Retry {
    statuses: Vec<StatusCode>,
    count: u32,
    interval: Duration,
    exponential: bool,
    max_interval: Duration,
}

impl Retry {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = serde_yaml::from_value(args).map_err(|e| e.to_string())?;
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
            .map(super::respond::status)
            .collect::<Result<_, _>>()?;
        Ok(Retry {
            statuses,
            count: f.count,
            interval: Duration::from_millis(f.interval_ms),
            exponential: f.exponential,
            max_interval: Duration::from_millis(f.max_interval_ms.unwrap_or(30_000)),
        })
    }

    pub fn retries_status(&self, status: StatusCode) -> bool {
        self.statuses.contains(&status)
    }

    /// The wait before retry number `n` (0-based).
    fn wait(&self, n: u32) -> Duration {
        let factor = if self.exponential {
            1u32 << n.min(16)
        } else {
            1
        };
        (self.interval * factor).min(self.max_interval)
    }

    /// Runs `attempt` until `again` says no or the retries are used up.
    pub async fn run<R, F: Future<Output = R>>(
        &self,
        mut attempt: impl FnMut() -> F,
        again: impl Fn(&R) -> bool,
    ) -> R {
        let mut result = attempt().await;
        for n in 0..self.count {
            if !again(&result) {
                break;
            }
            tokio::time::sleep(self.wait(n)).await;
            result = attempt().await;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn retry(args: &str) -> Retry {
        Retry::parse(serde_yaml::from_str(args).unwrap()).unwrap()
    }

    #[test]
    fn waits_grow_and_are_capped() {
        let r = retry("{count: 5, interval_ms: 100, exponential: true, max_interval_ms: 500}");
        let waits: Vec<u64> = (0..5).map(|n| r.wait(n).as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(retry("{count: 2, interval_ms: 7}").wait(3).as_millis(), 7);
        assert!(r.retries_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!r.retries_status(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(Retry::parse(serde_yaml::from_str("{count: 0}").unwrap()).is_err());
    }

    #[tokio::test]
    async fn stops_on_success_or_after_count() {
        let r = retry("{count: 3}");
        let calls = AtomicU32::new(0);
        let out = r
            .run(
                || async { calls.fetch_add(1, Ordering::SeqCst) + 1 },
                |n| *n < 2,
            )
            .await;
        assert_eq!((out, calls.load(Ordering::SeqCst)), (2, 2));
        let calls = AtomicU32::new(0);
        r.run(|| async { calls.fetch_add(1, Ordering::SeqCst) }, |_| true)
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }
}
