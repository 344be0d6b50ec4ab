//! `llm-token-limit` (APIM's `llm-token-limit` and `azure-openai-token-limit`):
//! language-model tokens per minute and/or per quota period, per counter
//! key. The tokens are the `usage` the model's answer reports (JSON or the
//! last events of a stream), plus, with `estimate_prompt_tokens`, the
//! prompt's tokens counted before the call is sent. Counted by the
//! gateway's `policy/tokens`.

use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use super::{
    expr::Text,
    key_template::KeyTemplate,
    limits::{header, variable},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// What is counted: the key template language or `@(...)`.
    #[serde(deserialize_with = "super::expr::text")]
    counter_key: Option<Text>,
    #[serde(default)]
    tokens_per_minute: Option<u64>,
    #[serde(default)]
    token_quota: Option<u64>,
    /// `Hourly`, `Daily`, `Weekly`, `Monthly` or `Yearly`.
    #[serde(default)]
    token_quota_period: Option<String>,
    /// Count the prompt's tokens before sending it (and refuse a prompt
    /// larger than what is left).
    #[serde(default)]
    estimate_prompt_tokens: bool,
    #[serde(default)]
    retry_after_header_name: Option<String>,
    #[serde(default)]
    retry_after_variable_name: Option<String>,
    #[serde(default)]
    remaining_tokens_header_name: Option<String>,
    #[serde(default)]
    remaining_tokens_variable_name: Option<String>,
    #[serde(default)]
    remaining_quota_tokens_header_name: Option<String>,
    #[serde(default)]
    remaining_quota_tokens_variable_name: Option<String>,
    #[serde(default)]
    tokens_consumed_header_name: Option<String>,
    #[serde(default)]
    tokens_consumed_variable_name: Option<String>,
    /// Bound on distinct counted keys (default 100000).
    #[serde(default)]
    max_keys: Option<usize>,
}

/// Where APIM's `*-header-name` and `*-variable-name` put the state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenStateNames {
    /// Refused calls: seconds until the window renews.
    pub retry_after_header: Option<http::HeaderName>,
    pub retry_after_variable: Option<String>,
    /// Admitted calls: tokens left this minute.
    pub remaining_tokens_header: Option<http::HeaderName>,
    pub remaining_tokens_variable: Option<String>,
    /// Admitted calls: tokens left in the quota period.
    pub remaining_quota_tokens_header: Option<http::HeaderName>,
    pub remaining_quota_tokens_variable: Option<String>,
    /// The call's tokens (prompt and completion) once its answer is known.
    pub tokens_consumed_header: Option<http::HeaderName>,
    pub tokens_consumed_variable: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TokenLimitSpec {
    pub key: Option<KeyTemplate>,
    pub key_expression: Option<std::sync::Arc<edgegw_policy_expr::Expression>>,
    pub per_minute: Option<u64>,
    /// Tokens per quota period, and the period.
    pub quota: Option<(u64, Duration)>,
    pub estimate_prompt_tokens: bool,
    pub max_keys: Option<usize>,
    pub names: TokenStateNames,
}

const HOUR: u64 = 3600;

/// A quota period by its APIM name: fixed windows from a key's first call
/// (as `quota` counts), a month being 30 days and a year 365.
fn period(name: &str) -> Result<Duration, String> {
    Ok(Duration::from_secs(match name.trim() {
        "Hourly" => HOUR,
        "Daily" => 24 * HOUR,
        "Weekly" => 7 * 24 * HOUR,
        "Monthly" => 30 * 24 * HOUR,
        "Yearly" => 365 * 24 * HOUR,
        other => {
            return Err(format!(
                "token_quota_period \"{other}\" is unknown; use Hourly, Daily, Weekly, Monthly or Yearly"
            ));
        }
    }))
}

impl TokenLimitSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        if f.tokens_per_minute == Some(0) || f.token_quota == Some(0) {
            return Err("tokens_per_minute and token_quota must be at least 1".into());
        }
        let quota = match (f.token_quota, f.token_quota_period.as_deref()) {
            (Some(n), Some(p)) => Some((n, period(p)?)),
            (Some(_), None) => {
                return Err("token_quota needs token_quota_period (Hourly, Daily, Weekly, Monthly or Yearly)".into());
            }
            (None, Some(_)) => return Err("token_quota_period needs token_quota".into()),
            (None, None) => None,
        };
        if f.tokens_per_minute.is_none() && quota.is_none() {
            return Err(
                "tokens_per_minute or token_quota (with token_quota_period) is required, e.g. tokens_per_minute: 5000"
                    .into(),
            );
        }
        let names = TokenStateNames {
            retry_after_header: header("retry_after_header_name", &f.retry_after_header_name)?,
            retry_after_variable: variable(
                "retry_after_variable_name",
                &f.retry_after_variable_name,
            )?,
            remaining_tokens_header: header(
                "remaining_tokens_header_name",
                &f.remaining_tokens_header_name,
            )?,
            remaining_tokens_variable: variable(
                "remaining_tokens_variable_name",
                &f.remaining_tokens_variable_name,
            )?,
            remaining_quota_tokens_header: header(
                "remaining_quota_tokens_header_name",
                &f.remaining_quota_tokens_header_name,
            )?,
            remaining_quota_tokens_variable: variable(
                "remaining_quota_tokens_variable_name",
                &f.remaining_quota_tokens_variable_name,
            )?,
            tokens_consumed_header: header(
                "tokens_consumed_header_name",
                &f.tokens_consumed_header_name,
            )?,
            tokens_consumed_variable: variable(
                "tokens_consumed_variable_name",
                &f.tokens_consumed_variable_name,
            )?,
        };
        if f.tokens_per_minute.is_none()
            && (names.remaining_tokens_header.is_some()
                || names.remaining_tokens_variable.is_some())
        {
            return Err(
                "remaining_tokens_* count tokens per minute; give tokens_per_minute too".into(),
            );
        }
        if quota.is_none()
            && (names.remaining_quota_tokens_header.is_some()
                || names.remaining_quota_tokens_variable.is_some())
        {
            return Err("remaining_quota_tokens_* count the quota; give token_quota too".into());
        }
        let (key, key_expression) = match f.counter_key {
            Some(Text::Literal(k)) => (Some(KeyTemplate::parse(&k)?), None),
            Some(Text::Expr(e)) => (None, Some(e)),
            None => {
                return Err(
                    "counter_key is required, e.g. counter_key: \"@(context.Subscription.Id)\""
                        .into(),
                );
            }
        };
        Ok(TokenLimitSpec {
            key,
            key_expression,
            per_minute: f.tokens_per_minute,
            quota,
            estimate_prompt_tokens: f.estimate_prompt_tokens,
            max_keys: f.max_keys,
            names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<TokenLimitSpec, String> {
        TokenLimitSpec::parse(serde_yaml::from_str(s).unwrap())
    }

    #[test]
    fn reads_rate_quota_and_state_names() {
        let s = parse(
            "{counter_key: '@(context.Subscription.Id)', tokens_per_minute: 500, token_quota: 10000, token_quota_period: Daily, estimate_prompt_tokens: true, remaining_tokens_header_name: x-left, tokens_consumed_variable_name: used}",
        )
        .unwrap();
        assert_eq!(s.per_minute, Some(500));
        assert_eq!(s.quota, Some((10000, Duration::from_secs(86400))));
        assert!(s.estimate_prompt_tokens && s.key_expression.is_some());
        assert_eq!(s.names.remaining_tokens_header.unwrap(), "x-left");
        assert_eq!(s.names.tokens_consumed_variable.as_deref(), Some("used"));
    }

    #[test]
    fn refuses_what_cannot_be_counted() {
        for (bad, want) in [
            ("{counter_key: x}", "tokens_per_minute or token_quota"),
            ("{tokens_per_minute: 5}", "counter_key"),
            ("{counter_key: x, tokens_per_minute: 0}", "at least 1"),
            (
                "{counter_key: x, token_quota: 5}",
                "needs token_quota_period",
            ),
            (
                "{counter_key: x, token_quota: 5, token_quota_period: Fortnightly}",
                "Fortnightly",
            ),
            (
                "{counter_key: x, token_quota_period: Daily}",
                "needs token_quota",
            ),
            (
                "{counter_key: x, tokens_per_minute: 5, remaining_tokens_header_name: 'a b'}",
                "not a valid header name",
            ),
            (
                "{counter_key: x, token_quota: 5, token_quota_period: Daily, remaining_tokens_variable_name: v}",
                "give tokens_per_minute",
            ),
            (
                "{counter_key: x, tokens_per_minute: 5, tokens-per-minute: 5}",
                "unknown field",
            ),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
