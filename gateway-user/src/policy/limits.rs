//! `rate-limit`, `rate-limit-by-key`, `quota`, `quota-by-key`: calls per
//! renewal period, counted per subscription (or per `counter_key` for the
//! by-key forms). Quotas may also (or instead) limit `bandwidth`: KiB of
//! request plus response body per period, charged when each forwarded call
//! ends. A rate limit answers 429, a quota 403, both with `Retry-After`;
//! every response under a limit carries the IETF `RateLimit-Policy` and
//! `RateLimit` headers (`<name>-bandwidth` with `qu="content-bytes"` for
//! bandwidth).
//!
//! Rate limits with `scope: cluster` count across the gateways sharing the
//! node's Redis (`cluster_limit`); while Redis is down they count on the
//! local counters, as `scope: local` does.
//!
//! Accuracy: exact on one gateway (see `counters`); reloads carry the
//! counters over while the policy's place and settings are unchanged
//! (`state_registry`). Without a subscription, `rate-limit`
//! and `quota` count per client IP.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use gateway_model::policy::limits::{Kind, LimitSpec, Scope, StateNames};
use hyper::{
    StatusCode,
    header::{HeaderName, HeaderValue},
};

use super::{
    cluster_limit::ClusterLimit,
    context::{Ctx, ExtraHeaders},
    counters::{Allowance, Counters, DEFAULT_MAX_KEYS, Decision, Exhausted, ceil_secs},
    expr::{Facts, Later},
    per_thread::PerThread,
    respond::{Answer, refusal},
    template::{KeyTemplate, Render},
};
use crate::{
    clock::monotonic_ns,
    datapath::Standing,
    fleet::{Fleet, FleetDecision},
    state_registry::{Kind as StateKind, Staging},
};

pub struct Limit {
    kind: Kind,
    /// The policy name, also the name in the `RateLimit` headers.
    name: &'static str,
    allowance: Allowance,
    period: Duration,
    key: Option<KeyTemplate>,
    /// The key, computed by a policy expression.
    key_expression: Option<Arc<edgegw_policy_expr::Expression>>,
    /// Count a call only when this holds over its response (`Deferred`).
    increment_condition: Option<Arc<edgegw_policy_expr::Expression>>,
    counters: Arc<Counters>,
    /// `RateLimit-Policy` values, rendered once.
    policy_headers: Vec<PerThread<HeaderValue>>,
    /// Where the policy sits (scope/section/index): with a control plane,
    /// call quotas are counted fleet-wide under `<place>|<key>`.
    place: String,
    /// The fleet counters a call quota of a managed gateway counts
    /// against; `None` for everything counted on this gateway.
    fleet: Option<Arc<Fleet>>,
    /// `scope: cluster`: counted in the node's Redis first.
    cluster: Option<Box<ClusterLimit>>,
    /// APIM's extra headers and variables for the limit's state; boxed,
    /// most limits have none.
    state_names: Option<Box<StateNames>>,
}

impl std::fmt::Debug for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({:?}/{:?})", self.name, self.allowance, self.period)
    }
}

/// The body bytes of one forwarded call, charged to a bandwidth quota
/// when the call ends (request and response bodies are streamed).
pub struct Charge {
    counters: Arc<Counters>,
    key: String,
    window: Instant,
}

impl Charge {
    pub fn add(&self, bytes: u64) {
        self.counters.charge(&self.key, self.window, bytes);
    }
}

/// A call a limit with an increment condition admitted: counted once
/// its response is known, when the condition holds over it (APIM's
/// `increment-condition`).
pub struct Deferred {
    name: &'static str,
    condition: Arc<edgegw_policy_expr::Expression>,
    counters: Arc<Counters>,
    /// Call quotas of a managed gateway: the fleet counter and its period.
    fleet: Option<(Arc<Fleet>, String, u64)>,
    key: String,
}

impl Deferred {
    /// Counts the call when the condition holds over the response. A
    /// condition that fails is logged and the call counted: a failure is
    /// never a free call.
    pub fn settle(&self, facts: &Facts, later: Later) {
        let holds =
            super::expr::holds_with(&self.condition, facts, Some(later)).unwrap_or_else(|err| {
                super::expr::log_failure(self.name, &self.condition, &err);
                true
            });
        if !holds {
            return;
        }
        match &self.fleet {
            Some((fleet, counter, period)) => {
                fleet.add(counter, *period, crate::clock::now_secs());
            }
            None => self.counters.add(&self.key, Instant::now()),
        }
    }
}

static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

impl Limit {
    /// The policy's name (`rate-limit`, `quota-by-key`, ...).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The runtime of `spec`; `place` (scope/section/index) names its
    /// counters, here and fleet-wide.
    pub fn new(spec: &LimitSpec, place: String, staging: &mut Staging) -> Self {
        let name = spec.name;
        let allowance = Allowance {
            calls: spec.calls,
            bytes: spec.bytes,
        };
        let w = spec.period.as_secs();
        let max_keys = spec.max_keys.unwrap_or(DEFAULT_MAX_KEYS);
        // The settings that shape the counters: a reload keeps the counters
        // of a policy whose place and identity are unchanged.
        let key = match &spec.key_expression {
            Some(e) => format!("{:?}", e.source()),
            None => format!("{:?}", spec.key),
        };
        let identity = format!("{name}|{allowance:?}|{w}|{key}|{max_keys}");
        let policy_headers = [
            spec.calls.map(|q| format!("\"{name}\";q={q};w={w}")),
            spec.bytes
                .map(|q| format!("\"{name}-bandwidth\";q={q};qu=\"content-bytes\";w={w}")),
        ]
        .into_iter()
        .flatten()
        .map(|v| PerThread::new(HeaderValue::try_from(v).expect("policy names are header-safe")))
        .collect();
        let cluster = match (spec.scope, staging.redis(), spec.calls) {
            (Scope::Cluster, Some(redis), Some(calls)) => Some(Box::new(ClusterLimit::new(
                redis.clone(),
                &place,
                &identity,
                calls,
                spec.period,
                max_keys,
            ))),
            (Scope::Cluster, None, _) => {
                staging.lacks_redis(&place);
                None
            }
            _ => None,
        };
        Limit {
            cluster,
            kind: spec.kind,
            name,
            allowance,
            period: spec.period,
            key: spec.key.clone(),
            key_expression: spec.key_expression.clone(),
            increment_condition: spec.increment_condition.clone(),
            // Reloads carry the counters of an unchanged policy over
            // (`state_registry`); a changed one starts afresh.
            counters: staging.take(StateKind::Limit, format!("{place}|{identity}"), || {
                Counters::new(allowance, spec.period, max_keys)
            }),
            policy_headers,
            place,
            // Call quotas count fleet-wide; rate limits and bandwidth
            // quotas on this gateway.
            fleet: staging
                .fleet()
                .filter(|_| spec.kind == Kind::Quota && spec.bytes.is_none())
                .cloned(),
            state_names: (spec.state_names != StateNames::default())
                .then(|| Box::new(spec.state_names.clone())),
        }
    }

    /// Counted in Redis (`scope: cluster` on a node with `[redis]`): run
    /// with `check_cluster`.
    pub fn is_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    pub fn check(&self, ctx: &mut Ctx) -> Option<Answer> {
        if let Some(early) = self.xdp_standing(ctx) {
            return early;
        }
        let key = match (&self.key, &self.key_expression) {
            (_, Some(e)) => match super::expr::text(e, ctx) {
                Ok(k) => k.into(),
                Err(err) => return Some(super::expr::failure(self.name, e, &err)),
            },
            (Some(t), None) => t.render(ctx),
            (None, None) => match ctx.subscription {
                Some(id) => format!("s:{id}").into(),
                None => format!("ip:{}", ctx.client_ip).into(),
            },
        };
        let counting = self.increment_condition.is_none();
        let decision = self.count(&key, counting);
        let deferred = match (&self.increment_condition, decision) {
            (Some(condition), Decision::Allowed { .. }) => Some(self.deferred(condition, &key)),
            _ => None,
        };
        // The key borrows the request: owned only for a bandwidth charge.
        let charged = matches!(
            decision,
            Decision::Allowed {
                remaining_bytes: Some(_),
                ..
            }
        )
        .then(|| key.into_owned());
        ctx.deferred.extend(deferred);
        self.answer(ctx, decision, charged)
    }

    /// `check` for a cluster limit: the call is counted in Redis, or
    /// locally while Redis is down.
    pub async fn check_cluster(&self, ctx: &mut Ctx<'_>) -> Option<Answer> {
        let Some(cluster) = &self.cluster else {
            return self.check(ctx);
        };
        if let Some(early) = self.xdp_standing(ctx) {
            return early;
        }
        let key: String = match (&self.key, &self.key_expression) {
            (_, Some(e)) => match super::expr::text(e, ctx) {
                Ok(k) => k,
                Err(err) => return Some(super::expr::failure(self.name, e, &err)),
            },
            (Some(t), None) => t.render(ctx).into_owned(),
            (None, None) => match ctx.subscription {
                Some(id) => format!("s:{id}"),
                None => format!("ip:{}", ctx.client_ip),
            },
        };
        let decision = match cluster.hit(&key).await {
            Some(d) => d,
            None => {
                cluster.redis().count_fallback();
                self.counters.hit(&key, Instant::now())
            }
        };
        self.answer(ctx, decision, None)
    }

    /// Keyed by client IP: XDP's allow list bypasses the limit, as it
    /// bypasses XDP's own; a client XDP denies or banned is refused.
    /// `Some` when that decides the call.
    #[inline]
    fn xdp_standing(&self, ctx: &Ctx) -> Option<Option<Answer>> {
        let by_ip = match (&self.key, &self.key_expression) {
            (_, Some(_)) => false,
            (Some(t), None) => t.uses_client_ip(),
            (None, None) => ctx.subscription.is_none(),
        };
        if by_ip && let Some(xdp) = ctx.xdp {
            match xdp.standing(ctx.client_ip) {
                Standing::Allowed => return Some(None),
                s if s.refused(monotonic_ns()) => {
                    return Some(Some(refusal(
                        StatusCode::FORBIDDEN,
                        "Forbidden: the caller's IP address is denied or banned by the gateway",
                    )));
                }
                _ => {}
            }
        }
        None
    }

    /// Adds the `RateLimit` headers of `decision`; the refusal when it
    /// denies the call.
    #[inline]
    fn answer(&self, ctx: &mut Ctx, decision: Decision, charged: Option<String>) -> Option<Answer> {
        for v in &self.policy_headers {
            ctx.response_headers
                .append(RATELIMIT_POLICY.clone(), v.get().clone());
        }
        let name = self.name;
        match decision {
            Decision::Allowed {
                remaining,
                remaining_bytes,
                reset,
                window,
            } => {
                let t = ceil_secs(reset);
                if let Some(r) = remaining {
                    append_state(&mut ctx.response_headers, name, "", r, t);
                    if let Some(n) = &self.state_names {
                        self.name_state(n, ctx, Some(r), None);
                    }
                }
                if let (Some(r), Some(key)) = (remaining_bytes, charged) {
                    append_state(&mut ctx.response_headers, name, "-bandwidth", r, t);
                    ctx.charges.push(Charge {
                        counters: self.counters.clone(),
                        key,
                        window,
                    });
                }
                None
            }
            Decision::Denied {
                retry_after,
                exhausted,
            } => {
                let secs = ceil_secs(retry_after);
                let suffix = match exhausted {
                    Exhausted::Calls => "",
                    Exhausted::Bandwidth => "-bandwidth",
                };
                append_state(&mut ctx.response_headers, name, suffix, 0, secs);
                if let Some(n) = &self.state_names {
                    self.name_state(n, ctx, None, Some(secs));
                }
                let (status, message) = match (self.kind, exhausted) {
                    (Kind::RateLimit, _) => (
                        StatusCode::TOO_MANY_REQUESTS,
                        format!("Rate limit is exceeded. Try again in {secs} seconds."),
                    ),
                    (Kind::Quota, Exhausted::Calls) => (
                        StatusCode::FORBIDDEN,
                        format!(
                            "Out of call volume quota. Quota will be replenished in {secs} seconds."
                        ),
                    ),
                    (Kind::Quota, Exhausted::Bandwidth) => (
                        StatusCode::FORBIDDEN,
                        format!(
                            "Out of bandwidth quota. Quota will be replenished in {secs} seconds."
                        ),
                    ),
                };
                let mut response = refusal(status, &message);
                response
                    .headers_mut()
                    .insert(hyper::header::RETRY_AFTER, HeaderValue::from(secs));
                Some(response)
            }
        }
    }
}

impl Limit {
    /// One call of `key` (only checked, not counted, unless `counting`):
    /// call quotas of a managed gateway count fleet-wide (`fleet`); rate
    /// limits and bandwidth quotas count on this gateway.
    fn count(&self, key: &str, counting: bool) -> Decision {
        let (Some(fleet), Some(calls)) = (&self.fleet, self.allowance.calls) else {
            return if counting {
                self.counters.hit(key, Instant::now())
            } else {
                self.counters.peek(key, Instant::now())
            };
        };
        let counter = self.fleet_counter(key);
        let now = crate::clock::now_secs();
        let period = self.period.as_secs();
        let decision = if counting {
            fleet.hit(&counter, calls, period, now)
        } else {
            fleet.peek(&counter, calls, period, now)
        };
        match decision {
            FleetDecision::Allowed { remaining, reset } => Decision::Allowed {
                remaining: Some(remaining),
                remaining_bytes: None,
                reset: Duration::from_secs(reset),
                window: Instant::now(),
            },
            FleetDecision::Denied { retry_after } => Decision::Denied {
                retry_after: Duration::from_secs(retry_after),
                exhausted: Exhausted::Calls,
            },
        }
    }
}

impl Limit {
    /// The limit's state under APIM's names: the calls left on an
    /// admitted call, the seconds to wait on a refused one.
    fn name_state(&self, n: &StateNames, ctx: &mut Ctx, remaining: Option<u64>, wait: Option<u64>) {
        let int = |v: u64| edgegw_policy_expr::Value::Int(i32::try_from(v).unwrap_or(i32::MAX));
        if let (Some(h), Some(calls)) = (&n.total_calls_header, self.allowance.calls) {
            ctx.response_headers
                .append(h.clone(), HeaderValue::from(calls));
        }
        if let Some(r) = remaining {
            if let Some(h) = &n.remaining_calls_header {
                ctx.response_headers.append(h.clone(), HeaderValue::from(r));
            }
            if let Some(v) = &n.remaining_calls_variable {
                ctx.variables.insert(v.clone(), int(r));
            }
        }
        if let Some(secs) = wait {
            if let Some(h) = &n.retry_after_header {
                ctx.response_headers
                    .append(h.clone(), HeaderValue::from(secs));
            }
            if let Some(v) = &n.retry_after_variable {
                ctx.variables.insert(v.clone(), int(secs));
            }
        }
    }

    fn fleet_counter(&self, key: &str) -> String {
        format!("{}|{key}", self.place)
    }

    /// The later count of a call admitted under `key`.
    fn deferred(&self, condition: &Arc<edgegw_policy_expr::Expression>, key: &str) -> Deferred {
        Deferred {
            name: self.name,
            condition: condition.clone(),
            counters: self.counters.clone(),
            fleet: self
                .fleet
                .as_ref()
                .filter(|_| self.allowance.calls.is_some())
                .map(|f| (f.clone(), self.fleet_counter(key), self.period.as_secs())),
            key: key.to_string(),
        }
    }
}

/// Appends `RateLimit: "<name><suffix>";r=<remaining>;t=<seconds>`, written
/// without the formatting machinery (it is on every limited call) in one
/// allocation of its exact size.
fn append_state(headers: &mut ExtraHeaders, name: &str, suffix: &str, remaining: u64, secs: u64) {
    let (mut r, mut t) = (itoa::Buffer::new(), itoa::Buffer::new());
    let value = super::context::joined(&[
        b"\"",
        name.as_bytes(),
        suffix.as_bytes(),
        b"\";r=",
        r.format(remaining).as_bytes(),
        b";t=",
        t.format(secs).as_bytes(),
    ]);
    if let Some(v) = value {
        headers.append(RATELIMIT.clone(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::HeaderMap;

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
        (r, ctx.response_headers.to_map())
    }

    fn yaml(s: &str) -> serde_yaml::Value {
        serde_yaml::from_str(s).unwrap()
    }

    fn parse(
        name: &'static str,
        kind: Kind,
        by_key: bool,
        args: serde_yaml::Value,
    ) -> Result<Limit, String> {
        LimitSpec::parse(name, kind, by_key, args)
            .map(|s| Limit::new(&s, String::new(), &mut Staging::fresh()))
    }

    #[test]
    fn rate_limit_counts_per_subscription_and_answers_429() {
        let l = parse(
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
    fn state_names_carry_remaining_total_and_wait() {
        let l = parse(
            "rate-limit",
            Kind::RateLimit,
            false,
            yaml(
                "{calls: 2, renewal_period: 60, retry_after_header_name: x-wait, \
                 retry_after_variable_name: wait, remaining_calls_header_name: x-left, \
                 remaining_calls_variable_name: left, total_calls_header_name: x-total}",
            ),
        )
        .unwrap();
        let method = hyper::Method::GET;
        let call = || {
            let mut headers = HeaderMap::new();
            let mut ctx = Ctx {
                subscription: Some("s"),
                ..Ctx::test(&method, &mut headers)
            };
            let status = l.check(&mut ctx).map(|r| r.status().as_u16());
            let int = |name: &str| match ctx.variables.get(name) {
                Some(edgegw_policy_expr::Value::Int(n)) => Some(*n),
                _ => None,
            };
            let vars = (int("left"), int("wait"));
            (status, ctx.response_headers.to_map(), vars)
        };
        let (status, h, vars) = call();
        assert_eq!(status, None);
        assert_eq!(h["x-left"], "1");
        assert_eq!(h["x-total"], "2");
        assert!(!h.contains_key("x-wait"));
        assert_eq!(vars, (Some(1), None));
        assert_eq!(call().2, (Some(0), None));
        let (status, h, vars) = call();
        assert_eq!(status, Some(429));
        assert!((1..=60).contains(&h["x-wait"].to_str().unwrap().parse::<u64>().unwrap()));
        assert_eq!(h["x-total"], "2");
        assert!(!h.contains_key("x-left"));
        assert!(vars.0.is_none() && vars.1.is_some_and(|w| (1..=60).contains(&w)));
    }

    #[test]
    fn increment_condition_counts_only_calls_whose_response_satisfies_it() {
        let l = parse(
            "rate-limit-by-key",
            Kind::RateLimit,
            true,
            yaml(
                "{calls: 2, renewal_period: 60, counter_key: '{header:x-tenant}', \
                 increment_condition: '@(context.Response.StatusCode >= 200 && context.Response.StatusCode < 400)'}",
            ),
        )
        .unwrap();
        let method = hyper::Method::GET;
        let none = HeaderMap::new();
        // Each call admitted leaves one deferred count; a 500 settles
        // without counting, a 200 counts.
        let call = |status: u16| {
            let mut headers = HeaderMap::new();
            headers.insert("x-tenant", "t".parse().unwrap());
            let mut ctx = Ctx::test(&method, &mut headers);
            let refused = l.check(&mut ctx).map(|r| r.status().as_u16());
            let facts = Facts::of(&ctx);
            for d in &ctx.deferred {
                d.settle(
                    &facts,
                    Later {
                        status,
                        headers: &none,
                        last_error: None,
                        body: None,
                    },
                );
            }
            (refused, ctx.deferred.len())
        };
        for _ in 0..5 {
            assert_eq!(call(500), (None, 1));
        }
        assert_eq!(call(200), (None, 1));
        assert_eq!(call(204), (None, 1));
        assert_eq!(call(200), (Some(429), 0));
    }

    #[test]
    fn quota_by_key_counts_per_rendered_key_and_answers_403() {
        let l = parse(
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
    fn bandwidth_quota_refuses_after_the_charged_bytes() {
        let l = parse(
            "quota",
            Kind::Quota,
            false,
            yaml("{bandwidth: 2, renewal_period: 60}"),
        )
        .unwrap();
        let headers = |ctx: &Ctx| {
            let all = |n| {
                ctx.response_headers
                    .to_map()
                    .get_all(n)
                    .iter()
                    .map(|v| v.to_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            };
            (all("ratelimit-policy"), all("ratelimit"))
        };
        let method = hyper::Method::GET;
        let mut h = HeaderMap::new();
        let mut ctx = Ctx::test(&method, &mut h);
        assert!(l.check(&mut ctx).is_none());
        assert_eq!(
            headers(&ctx),
            (
                vec!["\"quota-bandwidth\";q=2048;qu=\"content-bytes\";w=60".to_string()],
                vec!["\"quota-bandwidth\";r=2048;t=60".to_string()]
            )
        );
        assert_eq!(ctx.charges.len(), 1);
        ctx.charges[0].add(2048);
        let mut h = HeaderMap::new();
        let mut ctx = Ctx::test(&method, &mut h);
        let r = l.check(&mut ctx).expect("bandwidth used up");
        assert_eq!(r.status(), 403);
        assert!(r.headers().contains_key("retry-after"));
        assert!(ctx.charges.is_empty());
        assert!(headers(&ctx).1[0].starts_with("\"quota-bandwidth\";r=0;t="));
    }

    #[test]
    fn calls_and_bandwidth_report_both() {
        let l = parse(
            "quota-by-key",
            Kind::Quota,
            true,
            yaml("{calls: 5, bandwidth: 1, renewal_period: 10, counter_key: '{header:x-tenant}'}"),
        )
        .unwrap();
        let (status, headers) = check(&l, None, "t");
        assert_eq!(status, None);
        let got: Vec<_> = headers.get_all("ratelimit").iter().collect();
        assert_eq!(
            got,
            [
                "\"quota-by-key\";r=4;t=10",
                "\"quota-by-key-bandwidth\";r=1024;t=10"
            ]
        );
    }
}
