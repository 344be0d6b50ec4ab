//! The AI gateway's policies: `llm-token-limit` counts the language-model
//! tokens of each key per minute and per quota period and refuses calls
//! once they are used up; `llm-emit-token-metric` counts them in
//! `/metrics` by dimension. Both learn a call's tokens from the model's
//! answer (`usage.rs`) as it streams to the client (`Metered`), or, when a
//! `tokens-consumed` header or variable needs them before outbound runs,
//! from the answer read whole (`Meter::settle_buffered`).

mod estimate;
pub mod metrics;
pub mod usage;

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use bytes::Bytes;
use gateway_model::policy::{
    emit_token_metric::{DimensionValue, EmitTokenMetricSpec, Known},
    expr::Text,
    key_template::KeyTemplate,
    token_limit::{TokenLimitSpec, TokenStateNames},
};
use hyper::{
    StatusCode,
    body::{Body, Frame, SizeHint},
    header::HeaderValue,
};

use super::{
    context::Ctx,
    counters::{Allowance, Counters, DEFAULT_MAX_KEYS, Decision, ceil_secs},
    respond::{Answer, refusal},
    template::Render,
};
use crate::state_registry::{Kind as StateKind, Staging};
use usage::{Scanner, Usage};

/// One window of token counters: the limit and its counters.
struct Window {
    limit: u64,
    counters: Arc<Counters>,
}

pub struct TokenLimit {
    key: Option<KeyTemplate>,
    key_expression: Option<Arc<edgegw_policy_expr::Expression>>,
    minute: Option<Window>,
    quota: Option<Window>,
    estimate: bool,
    names: Box<TokenStateNames>,
}

impl std::fmt::Debug for TokenLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let limit = |w: &Option<Window>| w.as_ref().map(|w| w.limit);
        write!(
            f,
            "llm-token-limit(minute {:?}, quota {:?})",
            limit(&self.minute),
            limit(&self.quota)
        )
    }
}

/// A window's tokens charged for one call, once they are known.
struct Charged {
    counters: Arc<Counters>,
    key: String,
    window: Instant,
}

/// What one admitted call charges when its answer's tokens are known.
struct LimitCall {
    charged: Vec<Charged>,
    /// Prompt tokens counted in advance (`estimate_prompt_tokens`): only
    /// the completion is charged afterwards.
    estimated: Option<u64>,
}

/// A series `llm-emit-token-metric` adds the call's tokens to.
struct Emit {
    namespace: Arc<str>,
    dimensions: Vec<(String, String)>,
}

/// A call's token accounting, carried from inbound to the end of its
/// answer.
#[derive(Default)]
pub struct Meter {
    limits: Vec<LimitCall>,
    emits: Vec<Emit>,
    /// The prompt's tokens, when counted in advance.
    estimated_prompt: Option<u64>,
    consumed_header: Option<hyper::header::HeaderName>,
    consumed_variable: Option<String>,
}

impl TokenLimit {
    pub fn new(spec: &TokenLimitSpec, place: &str, staging: &mut Staging) -> TokenLimit {
        let key = match &spec.key_expression {
            Some(e) => format!("{:?}", e.source()),
            None => format!("{:?}", spec.key),
        };
        let max_keys = spec.max_keys.unwrap_or(DEFAULT_MAX_KEYS);
        let mut window = |what: &str, limit: u64, period: std::time::Duration| {
            // Kept across reloads while the policy's place and shape stay.
            let identity = format!(
                "{place}|llm-token-limit|{what}|{limit}|{}|{key}|{max_keys}",
                period.as_secs()
            );
            Window {
                limit,
                counters: staging.take(StateKind::Limit, identity, || {
                    Counters::new(
                        Allowance {
                            calls: None,
                            bytes: Some(limit),
                        },
                        period,
                        max_keys,
                    )
                }),
            }
        };
        TokenLimit {
            key: spec.key.clone(),
            key_expression: spec.key_expression.clone(),
            minute: spec
                .per_minute
                .map(|n| window("minute", n, std::time::Duration::from_secs(60))),
            quota: spec.quota.map(|(n, period)| window("quota", n, period)),
            estimate: spec.estimate_prompt_tokens,
            names: Box::new(spec.names.clone()),
        }
    }

    /// Admits the call while its key has tokens left (refusing a prompt
    /// counted in advance that needs more than are left), and leaves in
    /// `ctx` what it charges once the answer's tokens are known.
    pub async fn check(&self, ctx: &mut Ctx<'_>) -> Option<Answer> {
        let key = match &self.key_expression {
            Some(e) => match super::expr::text(e, ctx) {
                Ok(k) => k,
                Err(err) => return Some(super::expr::failure("llm-token-limit", e, &err)),
            },
            None => self
                .key
                .as_ref()
                .map(|t| t.render(ctx).into_owned())
                .unwrap_or_default(),
        };
        let estimated = if self.estimate {
            if let Err(answer) = ctx.body.read().await {
                return Some(answer);
            }
            ctx.body.bytes.as_deref().and_then(estimate::prompt_tokens)
        } else {
            None
        };
        let now = Instant::now();
        let mut charged = Vec::new();
        let mut left = [None, None];
        for (i, (w, quota)) in [(&self.minute, false), (&self.quota, true)]
            .into_iter()
            .enumerate()
            .filter_map(|(i, (w, q))| w.as_ref().map(|w| (i, (w, q))))
        {
            match w.counters.hit(&key, now) {
                Decision::Allowed {
                    remaining_bytes,
                    reset,
                    window,
                    ..
                } => {
                    let remaining = remaining_bytes.unwrap_or(w.limit);
                    if estimated.is_some_and(|n| n > remaining) {
                        return Some(self.refuse(ctx, quota, ceil_secs(reset)));
                    }
                    left[i] = Some(remaining - estimated.unwrap_or(0));
                    charged.push(Charged {
                        counters: w.counters.clone(),
                        key: key.clone(),
                        window,
                    });
                }
                Decision::Denied { retry_after, .. } => {
                    return Some(self.refuse(ctx, quota, ceil_secs(retry_after)));
                }
            }
        }
        if let Some(n) = estimated {
            for c in &charged {
                c.counters.charge(&c.key, c.window, n);
            }
        }
        let int = |v: u64| edgegw_policy_expr::Value::Int(i32::try_from(v).unwrap_or(i32::MAX));
        let names = &self.names;
        for (remaining, header, variable) in [
            (
                left[0],
                &names.remaining_tokens_header,
                &names.remaining_tokens_variable,
            ),
            (
                left[1],
                &names.remaining_quota_tokens_header,
                &names.remaining_quota_tokens_variable,
            ),
        ] {
            let Some(r) = remaining else { continue };
            if let Some(h) = header {
                ctx.response_headers.append(h.clone(), HeaderValue::from(r));
            }
            if let Some(v) = variable {
                ctx.variables.insert(v.clone(), int(r));
            }
        }
        if let Some(v) = &names.tokens_consumed_variable {
            // As APIM: the prompt's estimate until the answer is known.
            ctx.variables.insert(v.clone(), int(estimated.unwrap_or(0)));
        }
        let meter = ctx.tokens.get_or_insert_with(Default::default);
        meter.estimated_prompt = meter.estimated_prompt.or(estimated);
        meter.consumed_header = meter
            .consumed_header
            .take()
            .or(names.tokens_consumed_header.clone());
        meter.consumed_variable = meter
            .consumed_variable
            .take()
            .or(names.tokens_consumed_variable.clone());
        meter.limits.push(LimitCall { charged, estimated });
        None
    }

    /// 429 when the tokens per minute are used up, 403 for the quota.
    fn refuse(&self, ctx: &mut Ctx, quota: bool, secs: u64) -> Answer {
        if let Some(h) = &self.names.retry_after_header {
            ctx.response_headers
                .append(h.clone(), HeaderValue::from(secs));
        }
        if let Some(v) = &self.names.retry_after_variable {
            ctx.variables.insert(
                v.clone(),
                edgegw_policy_expr::Value::Int(i32::try_from(secs).unwrap_or(i32::MAX)),
            );
        }
        let mut response = if quota {
            refusal(
                StatusCode::FORBIDDEN,
                &format!("Token quota is exceeded. Try again in {secs} seconds."),
            )
        } else {
            refusal(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Token limit is exceeded. Try again in {secs} seconds."),
            )
        };
        if self.names.retry_after_header.is_none() {
            response
                .headers_mut()
                .insert(hyper::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[derive(Debug)]
pub struct EmitTokenMetric {
    namespace: Arc<str>,
    spec: EmitTokenMetricSpec,
    labels: Vec<String>,
}

impl EmitTokenMetric {
    pub fn new(spec: &EmitTokenMetricSpec) -> EmitTokenMetric {
        EmitTokenMetric {
            namespace: spec.namespace.as_str().into(),
            labels: spec
                .dimensions
                .iter()
                .map(|(n, _)| metrics::label_name(n))
                .collect(),
            spec: spec.clone(),
        }
    }

    /// Takes the dimensions' values from the request; the tokens are added
    /// once the answer's are known.
    pub fn apply(&self, ctx: &mut Ctx) -> Option<Answer> {
        let mut dimensions = Vec::with_capacity(self.labels.len());
        for (label, (_, value)) in self.labels.iter().zip(&self.spec.dimensions) {
            let v = match value {
                DimensionValue::Known(k) => known(*k, ctx),
                DimensionValue::Text(Text::Literal(l)) => l.clone(),
                DimensionValue::Text(Text::Expr(e)) => match super::expr::text(e, ctx) {
                    Ok(v) => v,
                    Err(err) => {
                        return Some(super::expr::failure("llm-emit-token-metric", e, &err));
                    }
                },
            };
            dimensions.push((label.clone(), v));
        }
        ctx.tokens
            .get_or_insert_with(Default::default)
            .emits
            .push(Emit {
                namespace: self.namespace.clone(),
                dimensions,
            });
        None
    }
}

/// A dimension APIM fills in by its name.
fn known(k: Known, ctx: &Ctx) -> String {
    match k {
        Known::Api => ctx.api.to_string(),
        Known::Operation => ctx.operation.unwrap_or_default().to_string(),
        Known::Product => ctx.product.unwrap_or_default().to_string(),
        Known::Subscription => ctx.subscription.unwrap_or_default().to_string(),
        Known::ClientIp => ctx.client_ip.to_string(),
        // No users, regions or gateway ids on a self-hosted node.
        Known::User | Known::Location | Known::GatewayId => String::new(),
    }
}

impl Meter {
    /// Whether its tokens are needed before outbound runs: a
    /// `tokens-consumed` header or variable on an answer that is not a
    /// stream (a stream's tokens are known only at its end).
    pub fn needs_answer_read(&self, content_type: Option<&str>) -> bool {
        (self.consumed_header.is_some() || self.consumed_variable.is_some())
            && matches!(Scanner::for_type(content_type), Scanner::Json { .. })
    }

    /// Charges and counts the call's tokens from the answer read whole;
    /// the tokens, for the `tokens-consumed` header and variable.
    pub fn settle_buffered(
        self,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u64, Option<hyper::header::HeaderName>, Option<String>) {
        let mut s = Scanner::for_type(content_type);
        s.feed(body);
        let consumed = self.settle(s.finish());
        (
            consumed,
            self.consumed_header.clone(),
            self.consumed_variable.clone(),
        )
    }

    /// Charges the limits and counts the metrics; returns the call's
    /// tokens (prompt and completion).
    fn settle(&self, (usage, text): (Option<Usage>, Option<String>)) -> u64 {
        let usage = usage.unwrap_or_else(|| Usage {
            // No usage reported: the prompt as counted in advance, and the
            // streamed text counted (nothing for an answer without either).
            prompt: self.estimated_prompt.unwrap_or(0),
            completion: text.as_deref().map_or(0, estimate::text_tokens),
        });
        for call in &self.limits {
            let tokens = match call.estimated {
                Some(_) => usage.completion,
                None => usage.total(),
            };
            for c in &call.charged {
                c.counters.charge(&c.key, c.window, tokens);
            }
        }
        for e in &self.emits {
            metrics::record(&e.namespace, e.dimensions.clone(), usage);
        }
        usage.total()
    }
}

/// An answer's body that reads the tokens of the answer as it goes to the
/// client and settles its `Meter` at the end (or when the client leaves:
/// what was streamed counts).
pub struct Metered<B> {
    inner: B,
    scanner: Option<Scanner>,
    meter: Option<Box<Meter>>,
}

impl<B> Metered<B> {
    /// `scanner` made for the answer's content type.
    pub fn new(inner: B, meter: Box<Meter>, scanner: Scanner) -> Metered<B> {
        Metered {
            inner,
            scanner: Some(scanner),
            meter: Some(meter),
        }
    }

    fn settle(&mut self) {
        if let (Some(meter), Some(scanner)) = (self.meter.take(), self.scanner.take()) {
            meter.settle(scanner.finish());
        }
    }
}

impl<B> Drop for Metered<B> {
    fn drop(&mut self) {
        self.settle();
    }
}

impl<B> Body for Metered<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(s)) = (frame.data_ref(), self.scanner.as_mut()) {
                    s.feed(data);
                }
            }
            Poll::Ready(None) => self.settle(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
