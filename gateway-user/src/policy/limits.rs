//! `rate-limit`, `rate-limit-by-key`, `quota`, `quota-by-key`: calls per
//! renewal period, counted per subscription (or per `counter_key` for the
//! by-key forms). A rate limit answers 429, a quota 403, both with
//! `Retry-After`; every response under a limit carries the IETF
//! `RateLimit-Policy` and `RateLimit` headers.
//!
//! Accuracy: exact on one gateway (see `counters`); counters start afresh
//! when the configuration is reloaded. Without a subscription, `rate-limit`
//! and `quota` count per client IP.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use hyper::{
    HeaderMap, Response, StatusCode,
    header::{HeaderName, HeaderValue},
};
use serde::Deserialize;
use serde_yaml::Value;

use super::{
    context::Ctx,
    counters::{Counters, DEFAULT_MAX_KEYS, Decision, ceil_secs},
    respond::json_error,
    template::KeyTemplate,
};
use crate::{proxy::ProxyBody, sync::fleet::FleetDecision};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    RateLimit,
    Quota,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Calls admitted per renewal period.
    calls: u64,
    /// Seconds.
    renewal_period: u64,
    /// By-key forms only: what is counted, in the key template language.
    #[serde(default)]
    counter_key: Option<String>,
    /// Bound on distinct counted keys (default 100000).
    #[serde(default)]
    max_keys: Option<usize>,
}

pub struct Limit {
    kind: Kind,
    /// The policy name, also the name in the `RateLimit` headers.
    name: &'static str,
    calls: u64,
    period: Duration,
    key: Option<KeyTemplate>,
    counters: Arc<Counters>,
    /// Where the policy sits (scope/section/index): with a control plane,
    /// quotas are counted fleet-wide under `<place>|<key>`.
    place: String,
}

impl std::fmt::Debug for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({}/{:?})", self.name, self.calls, self.period)
    }
}

static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

impl Limit {
    pub fn parse(
        name: &'static str,
        kind: Kind,
        by_key: bool,
        args: Value,
    ) -> Result<Self, String> {
        let f: File = serde_yaml::from_value(args).map_err(|e| e.to_string())?;
        if f.calls == 0 {
            return Err("calls must be at least 1".into());
        }
        if f.renewal_period == 0 {
            return Err("renewal_period must be at least 1 second".into());
        }
        let key = match (by_key, f.counter_key) {
            (true, Some(k)) => Some(KeyTemplate::parse(&k)?),
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
        let period = Duration::from_secs(f.renewal_period);
        Ok(Limit {
            kind,
            name,
            calls: f.calls,
            period,
            key,
            counters: Arc::new(Counters::new(
                f.calls,
                period,
                f.max_keys.unwrap_or(DEFAULT_MAX_KEYS),
            )),
            place: String::new(),
        })
    }

    pub fn check(&self, ctx: &mut Ctx) -> Option<Response<ProxyBody>> {
        let key = match &self.key {
            Some(t) => t.render(ctx),
            None => match ctx.subscription {
                Some(id) => format!("s:{id}"),
                None => format!("ip:{}", ctx.client_ip),
            },
        };
        let policy = format!(
            "\"{}\";q={};w={}",
            self.name,
            self.calls,
            self.period.as_secs()
        );
        append(&mut ctx.response_headers, &RATELIMIT_POLICY, &policy);
        match self.count(&key) {
            Decision::Allowed { remaining, reset } => {
                let state = format!("\"{}\";r={remaining};t={}", self.name, ceil_secs(reset));
                append(&mut ctx.response_headers, &RATELIMIT, &state);
                None
            }
            Decision::Denied { retry_after } => {
                let secs = ceil_secs(retry_after);
                let state = format!("\"{}\";r=0;t={secs}", self.name);
                append(&mut ctx.response_headers, &RATELIMIT, &state);
                let (status, message) = match self.kind {
                    Kind::RateLimit => (
                        StatusCode::TOO_MANY_REQUESTS,
                        format!("Rate limit is exceeded. Try again in {secs} seconds."),
                    ),
                    Kind::Quota => (
                        StatusCode::FORBIDDEN,
                        format!(
                            "Out of call volume quota. Quota will be replenished in {secs} seconds."
                        ),
                    ),
                };
                let mut response = json_error(status, &message);
                response
                    .headers_mut()
                    .insert(hyper::header::RETRY_AFTER, HeaderValue::from(secs));
                Some(response)
            }
        }
    }
}

impl Limit {
    /// Names the policy's place, the stable part of its fleet counters.
    pub fn set_place(&mut self, place: String) {
        self.place = place;
    }

    /// One call of `key`: quotas of a managed gateway count fleet-wide
    /// (`sync::fleet`), everything else on this gateway.
    fn count(&self, key: &str) -> Decision {
        let fleet = crate::sync::fleet::global().filter(|_| self.kind == Kind::Quota);
        let Some(fleet) = fleet else {
            return self.counters.hit(key, Instant::now());
        };
        let counter = format!("{}|{key}", self.place);
        let now = crate::status::now_secs();
        match fleet.hit(&counter, self.calls, self.period.as_secs(), now) {
            FleetDecision::Allowed { remaining, reset } => Decision::Allowed {
                remaining,
                reset: Duration::from_secs(reset),
            },
            FleetDecision::Denied { retry_after } => Decision::Denied {
                retry_after: Duration::from_secs(retry_after),
            },
        }
    }
}

fn append(headers: &mut HeaderMap, name: &HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.append(name.clone(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(limit: &Limit, sub: Option<&str>, tenant: &str) -> (Option<u16>, HeaderMap) {
        let mut headers = HeaderMap::new();
        headers.insert("x-tenant", tenant.parse().unwrap());
        let method = hyper::Method::GET;
        let mut ctx = Ctx {
            subscription: sub,
            ..Ctx::test(&method, &mut headers)
        };
        let r = limit.check(&mut ctx).map(|r| {
            assert!(r.headers().contains_key("retry-after"));
            r.status().as_u16()
        });
        (r, ctx.response_headers)
    }

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn rate_limit_counts_per_subscription_and_answers_429() {
        let l = Limit::parse(
            "rate-limit",
            Kind::RateLimit,
            false,
            yaml("{calls: 2, renewal_period: 60}"),
        )
        .unwrap();
        assert_eq!(check(&l, Some("a"), "t").0, None);
        let (status, headers) = check(&l, Some("a"), "t");
        assert_eq!(status, None);
        assert_eq!(headers["ratelimit-policy"], "\"rate-limit\";q=2;w=60");
        assert_eq!(headers["ratelimit"], "\"rate-limit\";r=0;t=60");
        assert_eq!(check(&l, Some("a"), "t").0, Some(429));
        assert_eq!(check(&l, Some("b"), "t").0, None);
    }

    #[test]
    fn quota_by_key_counts_per_rendered_key_and_answers_403() {
        let l = Limit::parse(
            "quota-by-key",
            Kind::Quota,
            true,
            yaml("{calls: 1, renewal_period: 3600, counter_key: '{header:x-tenant}'}"),
        )
        .unwrap();
        assert_eq!(check(&l, None, "t1").0, None);
        assert_eq!(check(&l, Some("other"), "t1").0, Some(403));
        assert_eq!(check(&l, None, "t2").0, None);
    }

    #[test]
    fn rejects_bad_settings() {
        for (by_key, bad) in [
            (false, "{calls: 0, renewal_period: 1}"),
            (false, "{calls: 1, renewal_period: 0}"),
            (true, "{calls: 1, renewal_period: 1}"),
            (false, "{calls: 1, renewal_period: 1, counter_key: x}"),
            (false, "{calls: 1, renewal-period: 1}"),
        ] {
            assert!(
                Limit::parse("rate-limit", Kind::RateLimit, by_key, yaml(bad)).is_err(),
                "{bad}"
            );
        }
    }
}
