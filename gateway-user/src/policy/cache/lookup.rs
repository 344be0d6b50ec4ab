//! `cache-lookup` (inbound) and `cache-store` (outbound).
//!
//! The lookup builds the request's key — API, operation, path after the
//! API prefix, the `vary_by_query_parameter` values (raw, as sent), the
//! `vary_by_header` values, the subscription (`vary_by_developer`) and
//! the product (`vary_by_developer_groups`) — and answers a fresh entry
//! with `Age` and `x-cache: HIT`. On a miss it adds `x-cache: MISS` and
//! leaves the key to `cache-store`, which copies the response body as it
//! streams to the client and stores it when it ends. Requests it does not
//! take (not GET/HEAD; `Authorization` without
//! `allow_private_response_caching`; Redis down) get `x-cache: BYPASS`.
//! HEAD reads the entries GET stored; HEAD responses are not stored.
//! A miss while another request that missed the same key is on its way
//! waits for that one's answer (`coalesce`): answered from the entry
//! (`HIT`), or a miss of its own if none was stored.
//!
//! Never stored: `Cache-Control: no-store`; without
//! `allow_private_response_caching`, `Cache-Control: private` and
//! `Set-Cookie`; without `cache_response: true`, any status but 200.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use gateway_model::policy::{
    cache_lookup::{CacheLookupSpec, Downstream},
    cache_store::CacheStoreSpec,
};
use hyper::{
    HeaderMap, Method, Response, StatusCode,
    body::{Body, Frame, SizeHint},
    header::{self, HeaderName, HeaderValue},
};

use super::{
    Store,
    coalesce::{self, Flight, Joined},
    entry::{Stored, now_ms},
    redis_response_key,
    state::{Bypass, Item, NotStored, Place},
};
use crate::{
    policy::{Answer, context::Ctx},
    state_registry::Staging,
};

pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
const HIT: HeaderValue = HeaderValue::from_static("HIT");
const MISS: HeaderValue = HeaderValue::from_static("MISS");
const BYPASS: HeaderValue = HeaderValue::from_static("BYPASS");

/// Largest response stored in Redis.
const MAX_REDIS_ENTRY: usize = 16 * 1024 * 1024;

#[derive(Debug)]
pub struct CacheLookup {
    spec: CacheLookupSpec,
    store: Store,
}

/// A request `cache-lookup` missed: what `cache-store` needs to store its
/// response.
pub struct Pending {
    key: String,
    store: Store,
    downstream: Downstream,
    must_revalidate: bool,
    allow_private: bool,
    /// Held by the first request to miss the key until its answer is
    /// stored (or is not to be): others wait on it.
    flight: Option<Flight>,
}

/// A miss behind another request's miss of the same key: wait for it
/// (`CacheLookup::after`).
pub struct Wait {
    key: String,
    leader: tokio::sync::watch::Receiver<()>,
}

impl CacheLookup {
    pub fn new(spec: &CacheLookupSpec, place: &str, staging: &mut Staging) -> CacheLookup {
        CacheLookup {
            spec: spec.clone(),
            store: Store::new(spec.caching_type, place, staging),
        }
    }

    /// Whether the lookup waits on Redis (run it with `lookup`); else
    /// `lookup_memory` answers at once.
    pub fn is_external(&self) -> bool {
        self.store.redis.is_some()
    }

    /// The cached answer, or `None` (the request goes on, marked).
    pub async fn lookup(&self, ctx: &mut Ctx<'_>) -> Option<Answer> {
        let key = self.key(ctx)?;
        let Ok(found) = self.find(&key, ctx.method).await else {
            return self.redis_down(ctx);
        };
        match self.found(ctx, key, found) {
            Ok(answer) => answer,
            Err(wait) => self.after(ctx, wait).await,
        }
    }

    /// `lookup` in this gateway's memory: at once, unless another
    /// request's miss of the key is on its way (then `after`).
    pub fn lookup_memory(&self, ctx: &mut Ctx<'_>) -> Result<Option<Answer>, Wait> {
        let Some(key) = self.key(ctx) else {
            return Ok(None);
        };
        let found = self.find_memory(&key, ctx.method);
        self.found(ctx, key, found)
    }

    /// Waits for the leader's answer to be stored, then looks once more:
    /// a hit, or a miss of this request's own (not waiting again).
    pub async fn after(&self, ctx: &mut Ctx<'_>, wait: Wait) -> Option<Answer> {
        coalesce::wait(wait.leader).await;
        let Ok(found) = self.find(&wait.key, ctx.method).await else {
            return self.redis_down(ctx);
        };
        let state = &self.store.state;
        match found {
            Some(answer) => {
                state.hit(self.place());
                Some(answer)
            }
            None => {
                state.miss(self.place());
                self.missed(ctx, wait.key, None);
                None
            }
        }
    }

    /// A hit (counted); else the first miss of the key leads (goes on to
    /// the backend), a later one waits (`Err`).
    fn found(
        &self,
        ctx: &mut Ctx<'_>,
        key: String,
        found: Option<Answer>,
    ) -> Result<Option<Answer>, Wait> {
        let state = &self.store.state;
        if let Some(answer) = found {
            state.hit(self.place());
            return Ok(Some(answer));
        }
        match state.join(&key) {
            Joined::Leader(flight) => {
                state.miss(self.place());
                self.missed(ctx, key, Some(flight));
                Ok(None)
            }
            Joined::Follower(leader) => Err(Wait { key, leader }),
        }
    }

    /// The fresh entry's answer; `Err` when Redis failed.
    async fn find(&self, key: &str, method: &Method) -> Result<Option<Answer>, ()> {
        let Some(redis) = &self.store.redis else {
            return Ok(self.find_memory(key, method));
        };
        let found = redis
            .get_bytes(&redis_response_key(key))
            .await
            .map_err(|_| ())?;
        Ok(found
            .and_then(Stored::decode)
            .filter(|s| s.expires_ms > now_ms())
            .map(|stored| self.answer(&stored, method)))
    }

    fn find_memory(&self, key: &str, method: &Method) -> Option<Answer> {
        match self.store.state.get(key) {
            Some(Item::Response(stored)) => Some(self.answer(&stored, method)),
            _ => None,
        }
    }

    fn redis_down(&self, ctx: &mut Ctx<'_>) -> Option<Answer> {
        self.store.state.bypass(Bypass::RedisDown);
        ctx.response_headers.append(X_CACHE, BYPASS);
        None
    }

    fn place(&self) -> Place {
        match self.store.redis {
            Some(_) => Place::Redis,
            None => Place::Memory,
        }
    }

    fn missed(&self, ctx: &mut Ctx<'_>, key: String, flight: Option<Flight>) {
        ctx.response_headers.append(X_CACHE, MISS);
        ctx.cache = Some(Box::new(Pending {
            key,
            store: self.store.clone(),
            downstream: self.spec.downstream,
            must_revalidate: self.spec.must_revalidate,
            allow_private: self.spec.allow_private,
            flight,
        }));
    }

    /// The request's key; `None` (counted, marked) when the cache does not
    /// take it.
    fn key(&self, ctx: &mut Ctx<'_>) -> Option<String> {
        let bypass = if *ctx.method != Method::GET && *ctx.method != Method::HEAD {
            Some(Bypass::Method)
        } else if !self.spec.allow_private && ctx.headers.contains_key(header::AUTHORIZATION) {
            Some(Bypass::Authorization)
        } else {
            None
        };
        if let Some(why) = bypass {
            self.store.state.bypass(why);
            ctx.response_headers.append(X_CACHE, BYPASS);
            return None;
        }
        Some(key(&self.spec, ctx))
    }

    fn answer(&self, stored: &Stored, method: &Method) -> Answer {
        let body = if *method == Method::HEAD {
            Bytes::new()
        } else {
            stored.body.clone()
        };
        let mut response = Response::new(body);
        *response.status_mut() = stored.status;
        let headers = response.headers_mut();
        *headers = stored.headers.clone();
        let now = now_ms();
        headers.insert(
            header::AGE,
            HeaderValue::from(now.saturating_sub(stored.stored_ms) / 1000),
        );
        headers.insert(X_CACHE, HIT);
        let left = stored.expires_ms.saturating_sub(now) / 1000;
        downstream(
            headers,
            self.spec.downstream,
            self.spec.must_revalidate,
            left,
        );
        response
    }
}

/// `\0` separates the parts: no header value, path or raw query has one.
fn key(spec: &CacheLookupSpec, ctx: &Ctx) -> String {
    let mut k = String::with_capacity(96 + ctx.path.len());
    for part in ["r", ctx.api, ctx.operation.unwrap_or_default(), &ctx.path] {
        k.push_str(part);
        k.push('\0');
    }
    for name in &spec.vary_by_query {
        k.push_str("q:");
        k.push_str(name);
        k.push('=');
        for (n, v) in &ctx.query.0 {
            if n == name || super::super::context::percent_decode(n) == *name {
                k.push_str(v.as_deref().unwrap_or_default());
                k.push(',');
            }
        }
        k.push('\0');
    }
    for name in &spec.vary_by_header {
        k.push_str("h:");
        k.push_str(name.as_str());
        k.push('=');
        for v in ctx.headers.get_all(name) {
            k.push_str(&String::from_utf8_lossy(v.as_bytes()));
            k.push(',');
        }
        k.push('\0');
    }
    if spec.vary_by_developer {
        k.push_str("s:");
        k.push_str(ctx.subscription.unwrap_or_default());
        k.push('\0');
    }
    if spec.vary_by_developer_groups {
        k.push_str("p:");
        k.push_str(ctx.product.unwrap_or_default());
        k.push('\0');
    }
    k
}

/// `Cache-Control` for clients, with `left` seconds of freshness.
fn downstream(headers: &mut HeaderMap, how: Downstream, must_revalidate: bool, left: u64) {
    let scope = match how {
        Downstream::None => return,
        Downstream::Private => "private",
        Downstream::Public => "public",
    };
    let revalidate = if must_revalidate {
        ", must-revalidate"
    } else {
        ""
    };
    if let Ok(v) = HeaderValue::try_from(format!("{scope}, max-age={left}{revalidate}")) {
        headers.insert(header::CACHE_CONTROL, v);
    }
}

/// Whether `Cache-Control` holds `token`.
fn cache_control_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| {
            let d = d.trim();
            let name = d.split('=').next().unwrap_or(d).trim();
            name.eq_ignore_ascii_case(token)
        })
}

#[derive(Debug)]
pub struct CacheStore {
    spec: CacheStoreSpec,
}

impl CacheStore {
    pub fn new(spec: &CacheStoreSpec) -> CacheStore {
        CacheStore { spec: spec.clone() }
    }

    /// The response, with its body copied into the cache as it streams
    /// when it may be stored.
    pub fn store<B>(
        &self,
        pending: Box<Pending>,
        method: &Method,
        response: Response<B>,
    ) -> Response<Tee<B>>
    where
        B: Body<Data = Bytes> + Unpin,
    {
        let (mut parts, body) = response.into_parts();
        let saving = self.saving(&pending, method, &parts.status, &parts.headers, &body);
        if saving.is_some() {
            downstream(
                &mut parts.headers,
                pending.downstream,
                pending.must_revalidate,
                self.spec.duration.as_secs(),
            );
        }
        let Pending {
            key, store, flight, ..
        } = *pending;
        let saving = saving.map(|max| {
            let mut headers = parts.headers.clone();
            // Written from the body by whoever answers from the entry.
            headers.remove(header::CONTENT_LENGTH);
            let now = now_ms();
            Box::new(Saving {
                head: Some(Stored {
                    status: parts.status,
                    headers,
                    body: Bytes::new(),
                    stored_ms: now,
                    expires_ms: now + self.spec.duration.as_millis() as u64,
                }),
                key,
                store: Some(store),
                buf: BytesMut::new(),
                max,
                ttl: self.spec.duration,
                flight,
            })
        });
        Response::from_parts(parts, Tee::new(body, saving))
    }

    /// The largest body to copy, or `None` when the response is not
    /// stored (counted).
    fn saving<B: Body>(
        &self,
        pending: &Pending,
        method: &Method,
        status: &StatusCode,
        headers: &HeaderMap,
        body: &B,
    ) -> Option<usize> {
        if *method == Method::HEAD {
            return None;
        }
        let state = &pending.store.state;
        let refused = if *status != StatusCode::OK && !self.spec.cache_response {
            Some(NotStored::Status)
        } else if cache_control_has(headers, "no-store") {
            Some(NotStored::NoStore)
        } else if !pending.allow_private && cache_control_has(headers, "private") {
            Some(NotStored::Private)
        } else if !pending.allow_private && headers.contains_key(header::SET_COOKIE) {
            Some(NotStored::SetCookie)
        } else {
            None
        };
        let max = match pending.store.redis {
            Some(_) => MAX_REDIS_ENTRY,
            None => state.max_entry_bytes() as usize,
        };
        let refused = refused
            .or_else(|| (body.size_hint().lower() > max as u64).then_some(NotStored::TooLarge));
        match refused {
            Some(why) => {
                state.not_stored(why);
                None
            }
            None => Some(max),
        }
    }
}

/// A response body on its way to the client, copied for the cache.
pub struct Tee<B> {
    inner: B,
    saving: Option<Box<Saving>>,
}

struct Saving {
    head: Option<Stored>,
    key: String,
    /// Taken when stored.
    store: Option<Store>,
    buf: BytesMut,
    max: usize,
    ttl: Duration,
    /// The leader's flight (see `coalesce`): ends when this is stored or
    /// dropped.
    flight: Option<Flight>,
}

impl<B: Body<Data = Bytes> + Unpin> Tee<B> {
    fn new(inner: B, saving: Option<Box<Saving>>) -> Tee<B> {
        let mut tee = Tee { inner, saving };
        // An empty body may never be polled.
        if tee.inner.is_end_stream() {
            tee.finish();
        }
        tee
    }

    fn finish(&mut self) {
        if let Some(saving) = self.saving.take() {
            saving.store();
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tee<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(saving)) = (frame.data_ref(), &mut this.saving)
                    && !saving.push(data)
                {
                    this.saving = None;
                }
                // The server stops polling once the body says it ended.
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(Some(Err(_))) => this.saving = None,
            Poll::Ready(None) => this.finish(),
            Poll::Pending => {}
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

impl Saving {
    /// Copies `data`; `false` past the bound (counted: nothing is stored).
    fn push(&mut self, data: &Bytes) -> bool {
        if self.buf.len() + data.len() > self.max {
            if let Some(store) = &self.store {
                store.state.not_stored(NotStored::TooLarge);
            }
            return false;
        }
        self.buf.extend_from_slice(data);
        true
    }

    fn store(mut self: Box<Self>) {
        let (Some(mut stored), Some(store)) = (self.head.take(), self.store.take()) else {
            return;
        };
        stored.body = std::mem::take(&mut self.buf).freeze();
        let state = store.state.clone();
        match store.redis {
            None => {
                state.insert(self.key, Item::Response(Arc::new(stored)));
                state.stored(Place::Memory);
            }
            Some(redis) => {
                let (key, ttl) = (redis_response_key(&self.key), self.ttl);
                let flight = self.flight.take();
                tokio::spawn(async move {
                    if redis.set_bytes(&key, &stored.encode(), ttl).await {
                        state.stored(Place::Redis);
                    } else {
                        state.bypass(Bypass::RedisDown);
                    }
                    // Waiters look again once the entry is there.
                    drop(flight);
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::context::Query;

    fn spec(yaml: &str) -> CacheLookupSpec {
        CacheLookupSpec::parse(serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    #[test]
    fn the_key_holds_api_operation_path_and_what_varies() {
        let by_sub = spec(
            "{vary_by_developer: true, vary_by_developer_groups: false, vary_by_query_parameter: [page], vary_by_header: [accept]}",
        );
        let shared = spec("{vary_by_developer: false, vary_by_developer_groups: false}");
        let method = Method::GET;
        let mut headers = HeaderMap::new();
        let base = |h: &mut HeaderMap, sub, query: &str, api| -> [String; 2] {
            let ctx = Ctx {
                subscription: sub,
                api,
                query: Query::parse(Some(query)),
                ..Ctx::test(&method, h)
            };
            [key(&by_sub, &ctx), key(&shared, &ctx)]
        };
        let alice = base(&mut headers, Some("alice"), "page=1&utm=a", "a");
        let bob = base(&mut headers, Some("bob"), "page=1", "a");
        assert_ne!(alice[0], bob[0], "per subscription");
        assert_eq!(alice[1], bob[1], "shared without vary_by_developer");
        assert_eq!(
            alice[0],
            base(&mut headers, Some("alice"), "utm=b&page=1", "a")[0]
        );
        assert_ne!(
            alice[0],
            base(&mut headers, Some("alice"), "page=2", "a")[0]
        );
        assert_ne!(
            alice[1],
            base(&mut headers, Some("alice"), "page=1", "b")[1],
            "per API"
        );
        headers.insert("accept", "text/plain".parse().unwrap());
        assert_ne!(
            alice[0],
            base(&mut headers, Some("alice"), "page=1", "a")[0]
        );
    }

    #[test]
    fn cache_control_tokens() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CACHE_CONTROL,
            "max-age=5, No-Store".parse().unwrap(),
        );
        assert!(cache_control_has(&h, "no-store"));
        assert!(!cache_control_has(&h, "private"));
        downstream(&mut h, Downstream::Public, true, 7);
        assert_eq!(
            h[header::CACHE_CONTROL],
            "public, max-age=7, must-revalidate"
        );
    }
}
