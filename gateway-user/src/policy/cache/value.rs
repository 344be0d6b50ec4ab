//! `cache-store-value`, `cache-lookup-value`, `cache-remove-value`: plain
//! values under keys of the key template language, in memory or Redis.
//! The looked-up value goes into the request header `header_name` (the
//! native stand-in for API Management's `variable-name` until policy
//! variables exist). Redis down: a lookup takes its default, a store or
//! removal is skipped; both counted as bypasses.

use bytes::Bytes;
use gateway_model::policy::{
    cache_lookup_value::CacheLookupValueSpec, cache_remove_value::CacheRemoveValueSpec,
    cache_store_value::CacheStoreValueSpec,
};
use hyper::header::HeaderValue;

use super::{
    Store,
    entry::now_ms,
    redis_value_key,
    state::{Bypass, Item, Place},
};
use crate::{
    policy::{context::Ctx, template::Render},
    state_registry::Staging,
};

/// Memory key of a value (responses' keys start with `r\0`).
fn memory_key(key: &str) -> String {
    format!("v\0{key}")
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

    pub async fn apply(&self, ctx: &Ctx<'_>) {
        let key = self.spec.key.render(ctx);
        let value = Bytes::from(self.spec.value.render(ctx).into_owned());
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

    pub async fn apply(&self, ctx: &mut Ctx<'_>) {
        let key = self.spec.key.render(ctx).into_owned();
        let state = &self.store.state;
        let found = match &self.store.redis {
            None => match state.get(&memory_key(&key)) {
                Some(Item::Value { value, .. }) => Some(value),
                _ => None,
            },
            Some(redis) => match redis.get_bytes(&redis_value_key(&key)).await {
                Ok(found) => found.map(Bytes::from),
                Err(_) => {
                    state.bypass(Bypass::RedisDown);
                    if let Some(d) = &self.spec.default {
                        ctx.headers.insert(self.spec.header.clone(), d.clone());
                    }
                    return;
                }
            },
        };
        let place = if self.store.redis.is_some() {
            Place::Redis
        } else {
            Place::Memory
        };
        let value = match found.and_then(|v| HeaderValue::from_maybe_shared(v).ok()) {
            Some(v) => {
                state.hit(place);
                v
            }
            None => {
                state.miss(place);
                match &self.spec.default {
                    Some(d) => d.clone(),
                    None => return,
                }
            }
        };
        ctx.headers.insert(self.spec.header.clone(), value);
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

    pub async fn apply(&self, ctx: &Ctx<'_>) {
        let key = self.spec.key.render(ctx);
        match &self.store.redis {
            None => self.store.state.remove(&memory_key(&key)),
            Some(redis) => {
                if !redis.delete(&redis_value_key(&key)).await {
                    self.store.state.bypass(Bypass::RedisDown);
                }
            }
        }
    }
}
