//! `retry` (backend section): sends the request again while the backend's
//! answer matches the condition (listed statuses, or a refused connection),
//! up to `count` more times, waiting as the spec says (fixed, doubling,
//! linear or exponential, capped by `max_interval_ms`).
//! Only requests without a body are retried: a streamed body cannot be
//! sent twice.

use std::{future::Future, sync::Arc, time::Duration};

use edgegw_policy_expr::Expression;
use gateway_model::policy::retry::RetrySpec;
use hyper::{HeaderMap, StatusCode};

use super::{
    expr::{self, Facts, Later},
    respond::Answer,
};

#[derive(Debug)]
pub struct Retry {
    /// APIM's `condition`: retry while it holds (instead of `statuses`).
    condition: Option<Arc<Expression>>,
    statuses: Vec<StatusCode>,
    count: u32,
    spec: RetrySpec,
}

impl Retry {
    pub fn new(spec: &RetrySpec) -> Self {
        Retry {
            condition: spec.condition.clone(),
            statuses: spec.statuses.clone(),
            count: spec.count,
            spec: spec.clone(),
        }
    }

    pub fn retries_status(&self, status: StatusCode) -> bool {
        self.statuses.contains(&status)
    }

    pub fn condition(&self) -> Option<&Expression> {
        self.condition.as_deref()
    }

    /// Whether the backend's answer calls for another attempt: the
    /// condition, evaluated with the answer as `context.Response`, or the
    /// listed statuses. A condition that fails to evaluate stops the
    /// retries with its error (500, for the on-error section, as in APIM;
    /// logged with its policy, line and column).
    pub fn retries(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        facts: Option<&Facts>,
    ) -> Result<bool, Box<Answer>> {
        let Some(e) = &self.condition else {
            return Ok(self.retries_status(status));
        };
        let later = Later {
            status: status.as_u16(),
            headers,
            last_error: None,
            body: None,
        };
        match facts.map(|f| expr::holds_with(e, f, Some(later))) {
            Some(Ok(holds)) => Ok(holds),
            Some(Err(err)) => Err(Box::new(expr::failure("retry", e, &err))),
            None => Ok(false),
        }
    }

    /// The wait before retry number `n` (0-based).
    fn wait(&self, n: u32) -> Duration {
        self.spec.wait(n + 1)
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
        Retry::new(&RetrySpec::parse(serde_yaml::from_str(args).unwrap()).unwrap())
    }

    #[test]
    fn waits_grow_and_are_capped() {
        let r = retry("{count: 5, interval_ms: 100, exponential: true, max_interval_ms: 500}");
        let waits: Vec<u64> = (0..5).map(|n| r.wait(n).as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        assert_eq!(retry("{count: 2, interval_ms: 7}").wait(3).as_millis(), 7);
        // APIM's delta: linear alone, exponential with max-interval; the
        // first retry at once with first_fast_retry.
        let waits = |args: &str| -> Vec<u64> {
            let r = retry(args);
            (0..5).map(|n| r.wait(n).as_millis() as u64).collect()
        };
        for (args, want) in [
            (
                "{count: 5, interval_ms: 100, delta_ms: 50}",
                [100, 150, 200, 250, 300],
            ),
            (
                "{count: 5, interval_ms: 100, delta_ms: 50, max_interval_ms: 1000}",
                [150, 250, 450, 850, 1000],
            ),
            (
                "{count: 5, interval_ms: 100, delta_ms: 50, first_fast_retry: true}",
                [0, 150, 200, 250, 300],
            ),
            (
                "{count: 5, interval_ms: 100, first_fast_retry: true}",
                [0, 100, 100, 100, 100],
            ),
        ] {
            assert_eq!(waits(args), want, "{args}");
        }
        assert!(r.retries_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!r.retries_status(StatusCode::INTERNAL_SERVER_ERROR));
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
