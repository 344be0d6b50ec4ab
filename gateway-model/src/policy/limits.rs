//! `rate-limit`, `rate-limit-by-key`, `quota`, `quota-by-key`: calls (and,
//! for quotas, KiB of body) per renewal period, per subscription or per
//! `counter_key`. Counted by the gateway's `policy/limits.rs`.

use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use super::{expr::Text, key_template::KeyTemplate};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    RateLimit,
    Quota,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Calls admitted per renewal period.
    #[serde(default)]
    calls: Option<u64>,
    /// Quotas only: KiB of request and response body per renewal period.
    #[serde(default)]
    bandwidth: Option<u64>,
    /// Seconds.
    renewal_period: u64,
    /// By-key forms only: what is counted, in the key template language,
    /// or a policy expression (`@(...)`).
    #[serde(default, deserialize_with = "super::expr::text")]
    counter_key: Option<Text>,
    /// Calls counted per request (APIM's `increment-count`): 1.
    #[serde(default)]
    increment_count: Option<u64>,
    /// A boolean policy expression (APIM's `increment-condition`): a call
    /// is counted only when it holds, evaluated once the response is
    /// known (`context.Response`); calls are still refused while the
    /// counted ones have used the allowance up.
    #[serde(default)]
    increment_condition: Option<Value>,
    /// Bound on distinct counted keys (default 100000).
    #[serde(default)]
    max_keys: Option<usize>,
    /// APIM's names for the limit's state (`StateNames`).
    #[serde(default)]
    retry_after_header_name: Option<String>,
    #[serde(default)]
    retry_after_variable_name: Option<String>,
    #[serde(default)]
    remaining_calls_header_name: Option<String>,
    #[serde(default)]
    remaining_calls_variable_name: Option<String>,
    #[serde(default)]
    total_calls_header_name: Option<String>,
    /// Rate limits only: `local` (default, counted on each gateway) or
    /// `cluster` (counted across the gateways sharing the node's `[redis]`).
    #[serde(default)]
    scope: Option<String>,
}

/// Where a rate limit is counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// On each gateway alone.
    #[default]
    Local,
    /// Across every gateway sharing one Redis (the node's `[redis]`).
    Cluster,
}

impl Scope {
    fn parse(name: &str, kind: Kind, value: Option<&str>) -> Result<Scope, String> {
        match (value, kind) {
            (None | Some("local"), _) => Ok(Scope::Local),
            (Some("cluster"), Kind::RateLimit) => Ok(Scope::Cluster),
            (Some("cluster"), Kind::Quota) => Err(format!(
                "scope: cluster is only for rate-limit and rate-limit-by-key; {name} counts \
                 on the gateway, or fleet-wide when a control plane is configured"
            )),
            (Some(other), _) => Err(format!(
                "scope must be \"local\" or \"cluster\", not \"{other}\""
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LimitSpec {
    pub kind: Kind,
    /// The policy name, also the name in the `RateLimit` headers.
    pub name: &'static str,
    /// Calls per period, if counted.
    pub calls: Option<u64>,
    /// Body bytes per period, if counted (quotas only).
    pub bytes: Option<u64>,
    pub period: Duration,
    /// By-key forms: what is counted.
    pub key: Option<KeyTemplate>,
    /// By-key forms: what is counted, computed by a policy expression
    /// (then `key` is `None`).
    pub key_expression: Option<std::sync::Arc<edgegw_policy_expr::Expression>>,
    /// Count a call only when this holds over its response.
    pub increment_condition: Option<std::sync::Arc<edgegw_policy_expr::Expression>>,
    /// Bound on distinct counted keys; the gateway's default when unset.
    pub max_keys: Option<usize>,
    /// Where the calls are counted (rate limits may be cluster-wide).
    pub scope: Scope,
    /// Extra headers and policy variables that carry the limit's state.
    pub state_names: StateNames,
}

/// Where APIM's `retry-after-*`, `remaining-calls-*` and
/// `total-calls-header-name` put the limit's state, besides the
/// `Retry-After` and IETF `RateLimit` headers edgegw always sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateNames {
    /// Refused calls: the seconds until the window renews.
    pub retry_after_header: Option<http::HeaderName>,
    /// Refused calls: the same seconds, an `int` in `context.Variables`.
    pub retry_after_variable: Option<String>,
    /// Admitted calls: the calls left in the window.
    pub remaining_calls_header: Option<http::HeaderName>,
    /// Admitted calls: the same number, an `int` in `context.Variables`.
    pub remaining_calls_variable: Option<String>,
    /// Every call: the calls allowed per window.
    pub total_calls_header: Option<http::HeaderName>,
}

/// A `*_header_name` setting of a limit's state.
pub(super) fn header(
    setting: &str,
    v: &Option<String>,
) -> Result<Option<http::HeaderName>, String> {
    v.as_deref()
        .map(|n| {
            http::HeaderName::from_bytes(n.trim().as_bytes()).map_err(|_| {
                format!("{setting} \"{n}\" is not a valid header name; write e.g. X-Limit-State")
            })
        })
        .transpose()
}

/// A `*_variable_name` setting of a limit's state.
pub(super) fn variable(setting: &str, v: &Option<String>) -> Result<Option<String>, String> {
    match v.as_deref().map(str::trim) {
        Some("") => Err(format!(
            "{setting} is empty; name the variable or remove it"
        )),
        other => Ok(other.map(str::to_string)),
    }
}

impl StateNames {
    fn parse(f: &File) -> Result<StateNames, String> {
        Ok(StateNames {
            retry_after_header: header("retry_after_header_name", &f.retry_after_header_name)?,
            retry_after_variable: variable(
                "retry_after_variable_name",
                &f.retry_after_variable_name,
            )?,
            remaining_calls_header: header(
                "remaining_calls_header_name",
                &f.remaining_calls_header_name,
            )?,
            remaining_calls_variable: variable(
                "remaining_calls_variable_name",
                &f.remaining_calls_variable_name,
            )?,
            total_calls_header: header("total_calls_header_name", &f.total_calls_header_name)?,
        })
    }
}

impl LimitSpec {
    pub fn parse(
        name: &'static str,
        kind: Kind,
        by_key: bool,
        args: Value,
    ) -> Result<Self, String> {
        let f: File = super::settings(args)?;
        let scope = Scope::parse(name, kind, f.scope.as_deref())?;
        if f.calls == Some(0) {
            return Err("calls must be at least 1".into());
        }
        if f.bandwidth == Some(0) {
            return Err("bandwidth must be at least 1 (KiB)".into());
        }
        let bytes = match (kind, f.bandwidth) {
            (Kind::RateLimit, Some(_)) => {
                return Err(format!(
                    "bandwidth is only for quota and quota-by-key; {name} counts calls"
                ));
            }
            (Kind::Quota, Some(kib)) => Some(
                kib.checked_mul(1024)
                    .ok_or("bandwidth is too large (KiB per period)")?,
            ),
            (_, None) => None,
        };
        if f.calls.is_none() && bytes.is_none() {
            return Err(match kind {
                Kind::RateLimit => "calls is required, e.g. calls: 100".into(),
                Kind::Quota => "calls or bandwidth (KiB) is required, e.g. calls: 10000".into(),
            });
        }
        let state_names = StateNames::parse(&f)?;
        if f.calls.is_none()
            && (state_names.remaining_calls_header.is_some()
                || state_names.remaining_calls_variable.is_some()
                || state_names.total_calls_header.is_some())
        {
            return Err(
                "remaining_calls_* and total_calls_header_name count calls; give calls too".into(),
            );
        }
        if f.renewal_period == 0 {
            return Err("renewal_period must be at least 1 second".into());
        }
        if f.increment_count.is_some_and(|n| n != 1) {
            return Err("increment_count other than 1 is not supported yet; remove it".into());
        }
        let increment_condition = match &f.increment_condition {
            None => None,
            Some(v) => match super::expr::text_of(v, Some(&edgegw_policy_expr::Ty::Bool))? {
                Text::Expr(e) => Some(e),
                Text::Literal(l) => {
                    return Err(format!(
                        "increment_condition \"{l}\" is not a policy expression; write e.g. \"@(context.Response.StatusCode < 400)\""
                    ));
                }
            },
        };
        if increment_condition.is_some() && scope == Scope::Cluster {
            return Err(
                "increment_condition is not supported with scope: cluster yet; remove one of them"
                    .into(),
            );
        }
        let mut key_expression = None;
        let key = match (by_key, f.counter_key) {
            (true, Some(Text::Literal(k))) => Some(KeyTemplate::parse(&k)?),
            (true, Some(Text::Expr(e))) => {
                key_expression = Some(e);
                None
            }
            (true, None) => {
                return Err("counter_key is required, e.g. counter_key: \"{client_ip}\"".into());
            }
            (false, Some(_)) => {
                return Err(format!(
                    "counter_key is only for {name}-by-key; {name} counts per subscription"
                ));
            }
            (false, None) => None,
        };
        Ok(LimitSpec {
            kind,
            name,
            calls: f.calls,
            bytes,
            period: Duration::from_secs(f.renewal_period),
            key,
            key_expression,
            increment_condition,
            max_keys: f.max_keys,
            scope,
            state_names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn rejects_bad_settings() {
        for (kind, bad) in [
            (Kind::Quota, "{renewal_period: 60}"),
            (Kind::Quota, "{bandwidth: 0, renewal_period: 60}"),
            (Kind::RateLimit, "{bandwidth: 10, renewal_period: 60}"),
            (Kind::RateLimit, "{renewal_period: 60}"),
            (
                Kind::Quota,
                "{bandwidth: 18446744073709551615, renewal_period: 60}",
            ),
        ] {
            assert!(
                LimitSpec::parse("x", kind, false, yaml(bad)).is_err(),
                "{bad}"
            );
        }
        for (by_key, bad) in [
            (false, "{calls: 0, renewal_period: 1}"),
            (false, "{calls: 1, renewal_period: 0}"),
            (true, "{calls: 1, renewal_period: 1}"),
            (false, "{calls: 1, renewal_period: 1, counter_key: x}"),
            (false, "{calls: 1, renewal-period: 1}"),
        ] {
            assert!(
                LimitSpec::parse("rate-limit", Kind::RateLimit, by_key, yaml(bad)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn increment_condition_is_a_boolean_expression() {
        let ok = LimitSpec::parse(
            "rate-limit-by-key",
            Kind::RateLimit,
            true,
            yaml("{calls: 5, renewal_period: 60, counter_key: x, increment_condition: '@(context.Response.StatusCode < 400)'}"),
        )
        .unwrap();
        assert!(ok.increment_condition.is_some());
        for (bad, why) in [
            ("increment_condition: 'yes'", "is not a policy expression"),
            (
                "increment_condition: '@(context.Response.StatusCode)'",
                "must be bool",
            ),
            (
                "increment_condition: '@(true)', scope: cluster",
                "not supported with scope: cluster",
            ),
        ] {
            let e = LimitSpec::parse(
                "rate-limit-by-key",
                Kind::RateLimit,
                true,
                yaml(&format!(
                    "{{calls: 5, renewal_period: 60, counter_key: x, {bad}}}"
                )),
            )
            .unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn state_names_are_header_and_variable_names() {
        let s = LimitSpec::parse(
            "rate-limit",
            Kind::RateLimit,
            false,
            yaml(
                "{calls: 5, renewal_period: 60, retry_after_header_name: X-Wait, \
                 retry_after_variable_name: wait, remaining_calls_header_name: X-Left, \
                 remaining_calls_variable_name: left, total_calls_header_name: X-Total}",
            ),
        )
        .unwrap()
        .state_names;
        assert_eq!(s.retry_after_header.unwrap(), "x-wait");
        assert_eq!(s.retry_after_variable.as_deref(), Some("wait"));
        assert_eq!(s.remaining_calls_header.unwrap(), "x-left");
        assert_eq!(s.remaining_calls_variable.as_deref(), Some("left"));
        assert_eq!(s.total_calls_header.unwrap(), "x-total");
        for (kind, bad, why) in [
            (
                Kind::RateLimit,
                "calls: 5, retry_after_header_name: 'a b'",
                "\"a b\" is not a valid header name",
            ),
            (
                Kind::RateLimit,
                "calls: 5, remaining_calls_variable_name: ' '",
                "remaining_calls_variable_name is empty",
            ),
            (
                Kind::Quota,
                "bandwidth: 5, total_calls_header_name: X-T",
                "give calls too",
            ),
        ] {
            let e = LimitSpec::parse(
                "rate-limit",
                kind,
                false,
                yaml(&format!("{{renewal_period: 60, {bad}}}")),
            )
            .unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn scope_is_local_by_default_and_cluster_only_for_rate_limits() {
        /// Policy name, kind, by key, settings, the scope or the error's start.
        type Case = (
            &'static str,
            Kind,
            bool,
            &'static str,
            Result<Scope, &'static str>,
        );
        let cases: &[Case] = &[
            (
                "rate-limit",
                Kind::RateLimit,
                false,
                "{calls: 5, renewal_period: 60}",
                Ok(Scope::Local),
            ),
            (
                "rate-limit",
                Kind::RateLimit,
                false,
                "{calls: 5, renewal_period: 60, scope: local}",
                Ok(Scope::Local),
            ),
            (
                "rate-limit",
                Kind::RateLimit,
                false,
                "{calls: 5, renewal_period: 60, scope: cluster}",
                Ok(Scope::Cluster),
            ),
            (
                "rate-limit-by-key",
                Kind::RateLimit,
                true,
                "{calls: 5, renewal_period: 60, counter_key: '{client_ip}', scope: cluster}",
                Ok(Scope::Cluster),
            ),
            (
                "rate-limit",
                Kind::RateLimit,
                false,
                "{calls: 5, renewal_period: 60, scope: global}",
                Err("scope must be \"local\" or \"cluster\", not \"global\""),
            ),
            (
                "quota",
                Kind::Quota,
                false,
                "{calls: 5, renewal_period: 60, scope: cluster}",
                Err("scope: cluster is only for rate-limit and rate-limit-by-key"),
            ),
            (
                "quota-by-key",
                Kind::Quota,
                true,
                "{calls: 5, renewal_period: 60, counter_key: x, scope: cluster}",
                Err("scope: cluster is only for rate-limit and rate-limit-by-key"),
            ),
            (
                "quota",
                Kind::Quota,
                false,
                "{calls: 5, renewal_period: 60, scope: local}",
                Ok(Scope::Local),
            ),
        ];
        for (name, kind, by_key, settings, want) in cases {
            let got = LimitSpec::parse(name, *kind, *by_key, yaml(settings)).map(|s| s.scope);
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{settings}"),
                (Err(got), Err(want)) => assert!(got.starts_with(want), "{settings}: {got}"),
                (got, want) => panic!("{settings}: got {got:?}, want {want:?}"),
            }
        }
    }
}
