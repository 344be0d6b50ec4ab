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
        Ok(RetrySpec {
            condition,
            statuses,
            count: f.count,
            interval: Duration::from_millis(f.interval_ms),
            exponential: f.exponential,
            max_interval: Duration::from_millis(f.max_interval_ms.unwrap_or(30_000)),
        })
    }
}
