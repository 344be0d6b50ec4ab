//! `cache-store-value`, `cache-lookup-value`, `cache-remove-value`: plain
//! values under keys (key templates or policy expressions), in memory or
//! Redis. A looked-up value goes into a policy variable (APIM's
//! `variable-name`) or a request header. Redis down: a lookup takes its
//! default, a store or removal is skipped; both counted as bypasses.

use std::borrow::Cow;

use bytes::Bytes;
use edgegw_policy_expr::Value;
use gateway_model::policy::{
    cache_lookup_value::{CacheLookupValueSpec, Target},
    cache_remove_value::CacheRemoveValueSpec,
    cache_store_value::{CacheStoreValueSpec, StoredValue},
    key_template::KeyText,
};
use hyper::header::HeaderValue;

use super::{
    Store,
    entry::now_ms,
    redis_value_key,
    state::{Bypass, Item, Place},
};
use crate::{
    policy::{context::Ctx, expr, respond::Answer, template::Render},
    state_registry::Staging,
};

/// Memory key of a value (responses' keys start with `r\0`).
fn memory_key(key: &str) -> String {
    format!("v\0{key}")
}

/// The entry's key for this request; a failed expression is the answer.
fn key<'c>(
    key: &'c KeyText,
    ctx: &'c Ctx,
    policy: &'static str,
) -> Result<Cow<'c, str>, Box<Answer>> {
    match key {
        KeyText::Template(t) => Ok(t.render(ctx)),
        KeyText::Expr(e) => expr::text(e, ctx)
            .map(Cow::Owned)
            .map_err(|err| Box::new(expr::failure(policy, e, &err))),
    }
}

/// Stored bytes of a value: text as it is (a header can take it), other
/// types behind a tag (`\0` never starts a header value) so a lookup
/// into a variable gives the type back.
fn encode(v: &Value) -> Bytes {
    let tagged = |tag: char, text: String| Bytes::from(format!("\0{tag}{text}"));
    match v {
        Value::Null => tagged('n', String::new()),
        Value::Bool(b) => tagged('b', b.to_string()),
        Value::Int(i) => tagged('i', i.to_string()),
        Value::Long(i) => tagged('l', i.to_string()),
        Value::Double(d) => tagged('d', d.to_string()),
        Value::Json(j) => tagged('j', j.to_string()),
        other => Bytes::from(other.to_string()),
    }
}

/// The value of stored bytes (see `encode`); unknown tags are text.
fn decode(bytes: &[u8]) -> Value<'static> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let typed = match bytes {
        [0, b'n', ..] => Some(Value::Null),
        [0, b'b', rest @ ..] => Some(Value::Bool(rest == b"true")),
        [0, b'i', rest @ ..] => text(rest).parse().ok().map(Value::Int),
        [0, b'l', rest @ ..] => text(rest).parse().ok().map(Value::Long),
        [0, b'd', rest @ ..] => text(rest).parse().ok().map(Value::Double),
        [0, b'j', rest @ ..] => serde_json::from_slice(rest)
            .ok()
            .map(|j| Value::Json(std::sync::Arc::new(j))),
        _ => None,
    };
    typed.unwrap_or_else(|| Value::string(text(bytes)))
}

/// Stored bytes as a header value: a tagged value's text.
fn header_value(bytes: Bytes) -> Option<HeaderValue> {
    let bytes = match bytes.as_ref() {
        [0, _, ..] => bytes.slice(2..),
        _ => bytes,
    };
    HeaderValue::from_maybe_shared(bytes).ok()
}

#[derive(Debug)]
pub struct CacheStoreValue {
    spec: CacheStoreValueSpec,
    store: Store,
}

impl CacheStoreValue {
    pub fn new(spec: &CacheStoreValueSpec, place: &str, staging: &mut Staging) -> Self {
        CacheStoreValue {
            spec: spec.clone(),
            store: Store::new(spec.caching_type, place, staging),
        }
    }

    pub async fn apply(&self, ctx: &Ctx<'_>) -> Option<Answer> {
        const POLICY: &str = "cache-store-value";
        let key = match key(&self.spec.key, ctx, POLICY) {
            Ok(k) => k,
            Err(failed) => return Some(*failed),
        };
        let value = match &self.spec.value {
            StoredValue::Template(t) => Bytes::from(t.render(ctx).into_owned()),
            StoredValue::Expr(e) => match expr::eval(e, ctx, encode) {
                Ok(v) => v,
                Err(err) => return Some(expr::failure(POLICY, e, &err)),
            },
        };
        let state = &self.store.state;
        match &self.store.redis {
            None => {
                let expires_ms = now_ms() + self.spec.duration.as_millis() as u64;
                state.insert(memory_key(&key), Item::Value { value, expires_ms });
                state.stored(Place::Memory);
            }
            Some(redis) => {
                if redis
                    .set_bytes(&redis_value_key(&key), &value, self.spec.duration)
                    .await
                {
                    state.stored(Place::Redis);
                } else {
                    state.bypass(Bypass::RedisDown);
                }
            }
        }
        None
    }
}

#[derive(Debug)]
pub struct CacheLookupValue {
    spec: CacheLookupValueSpec,
    store: Store,
}

impl CacheLookupValue {
    pub fn new(spec: &CacheLookupValueSpec, place: &str, staging: &mut Staging) -> Self {
        CacheLookupValue {
            spec: spec.clone(),
            store: Store::new(spec.caching_type, place, staging),
        }
    }

    pub async fn apply(&self, ctx: &mut Ctx<'_>) -> Option<Answer> {
        let key = match key(&self.spec.key, ctx, "cache-lookup-value") {
            Ok(k) => k.into_owned(),
            Err(failed) => return Some(*failed),
        };
        let state = &self.store.state;
        let place = if self.store.redis.is_some() {
            Place::Redis
        } else {
            Place::Memory
        };
        let found = match &self.store.redis {
            None => match state.get(&memory_key(&key)) {
                Some(Item::Value { value, .. }) => Some(value),
                _ => None,
            },
            Some(redis) => match redis.get_bytes(&redis_value_key(&key)).await {
                Ok(found) => found.map(Bytes::from),
                Err(_) => {
                    state.bypass(Bypass::RedisDown);
                    self.miss(ctx);
                    return None;
                }
            },
        };
        match found {
            Some(v) => {
                state.hit(place);
                match &self.spec.target {
                    Target::Variable(name, _) => {
                        ctx.variables.insert(name.clone(), decode(&v));
                    }
                    Target::Header(name, _) => match header_value(v) {
                        Some(v) => {
                            ctx.headers.insert(name.clone(), v);
                        }
                        None => self.miss(ctx),
                    },
                }
            }
            None => {
                state.miss(place);
                self.miss(ctx);
            }
        }
        None
    }

    /// No value for the key: the default, if one is given.
    fn miss(&self, ctx: &mut Ctx) {
        match &self.spec.target {
            Target::Variable(name, Some(d)) => {
                ctx.variables.insert(name.clone(), d.clone());
            }
            Target::Header(name, Some(d)) => {
                ctx.headers.insert(name.clone(), d.clone());
            }
            _ => {}
        }
    }
}

#[derive(Debug)]
pub struct CacheRemoveValue {
    spec: CacheRemoveValueSpec,
    store: Store,
}

impl CacheRemoveValue {
    pub fn new(spec: &CacheRemoveValueSpec, place: &str, staging: &mut Staging) -> Self {
        CacheRemoveValue {
            spec: spec.clone(),
            store: Store::new(spec.caching_type, place, staging),
        }
    }

    pub async fn apply(&self, ctx: &Ctx<'_>) -> Option<Answer> {
        let key = match key(&self.spec.key, ctx, "cache-remove-value") {
            Ok(k) => k,
            Err(failed) => return Some(*failed),
        };
        match &self.store.redis {
            None => self.store.state.remove(&memory_key(&key)),
            Some(redis) => {
                if !redis.delete(&redis_value_key(&key)).await {
                    self.store.state.bypass(Bypass::RedisDown);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_keep_their_type() {
        let json = Value::Json(std::sync::Arc::new(serde_json::json!({"a": [1, "x"]})));
        for v in [
            Value::string("plain text".into()),
            Value::Int(-7),
            Value::Long(1 << 40),
            Value::Bool(true),
            Value::Double(2.5),
            Value::Null,
            json,
        ] {
            assert_eq!(decode(&encode(&v)), v, "{v:?}");
        }
        // A header gets a typed value's text; text is text.
        assert_eq!(header_value(encode(&Value::Int(42))).unwrap(), "42");
        assert_eq!(header_value(Bytes::from("abc")).unwrap(), "abc");
    }
}
