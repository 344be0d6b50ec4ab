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
    /// APIM's `delta`: with it, waits grow linearly (interval + n x
    /// delta), or exponentially when `max_interval_ms` is given too.
    #[serde(default)]
    delta_ms: Option<u64>,
    /// The first retry is sent at once, without waiting.
    #[serde(default)]
    first_fast_retry: bool,
    /// Cap on the wait (default 30000).
    #[serde(default)]
    max_interval_ms: Option<u64>,
    /// A boolean policy expression over `context.Response` (APIM's
    /// `condition`): retry while it holds, instead of `status_codes`.
    #[serde(default)]
    condition: Option<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RetrySpec {
    /// Retry while this holds (then `statuses` is not used).
    pub condition: Option<std::sync::Arc<edgegw_policy_expr::Expression>>,
    pub statuses: Vec<StatusCode>,
    /// Extra attempts after the first (1 to 10).
    pub count: u32,
    pub interval: Duration,
    pub waits: Waits,
    pub max_interval: Duration,
    pub first_fast_retry: bool,
}

/// How the wait before each retry grows, as APIM's `retry` documents it
/// (`n` is the retry's number, from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waits {
    /// `interval` every time.
    Fixed,
    /// `interval`, doubled after every retry.
    Doubling,
    /// `interval + (n - 1) x delta`.
    Linear { delta: Duration },
    /// `interval + (2^n - 1) x delta` (APIM's, without its random ±20%).
    Exponential { delta: Duration },
}

impl RetrySpec {
    /// The wait before retry number `n` (from 1), capped by `max_interval`.
    pub fn wait(&self, n: u32) -> Duration {
        if n == 1 && self.first_fast_retry {
            return Duration::ZERO;
        }
        let k = n.saturating_sub(1).min(20);
        let wait = match self.waits {
            Waits::Fixed => self.interval,
            Waits::Doubling => self.interval * (1u32 << k),
            Waits::Linear { delta } => self.interval + delta * k,
            Waits::Exponential { delta } => self.interval + delta * ((1u32 << (k + 1)) - 1),
        };
        wait.min(self.max_interval)
    }
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
        let condition = match &f.condition {
            None => None,
            Some(v) => match super::expr::text_of(v, Some(&edgegw_policy_expr::Ty::Bool))? {
                super::expr::Text::Expr(e) => Some(e),
                super::expr::Text::Literal(l) => {
                    return Err(format!(
                        "condition \"{l}\" is not a policy expression; write e.g. \"@(context.Response.StatusCode >= 500)\""
                    ));
                }
            },
        };
        let waits = match (f.delta_ms, f.exponential, f.max_interval_ms) {
            (Some(_), true, _) => {
                return Err("give delta_ms or exponential, not both: delta_ms with max_interval_ms is already exponential".into());
            }
            (Some(d), false, None) => Waits::Linear {
                delta: Duration::from_millis(d),
            },
            (Some(d), false, Some(_)) => Waits::Exponential {
                delta: Duration::from_millis(d),
            },
            (None, true, _) => Waits::Doubling,
            (None, false, _) => Waits::Fixed,
        };
        Ok(RetrySpec {
            condition,
            statuses,
            count: f.count,
            interval: Duration::from_millis(f.interval_ms),
            waits,
            max_interval: Duration::from_millis(f.max_interval_ms.unwrap_or(30_000)),
            first_fast_retry: f.first_fast_retry,
        })
    }
}
