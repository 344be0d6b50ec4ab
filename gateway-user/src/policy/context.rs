//! What policies see of a request: the route, the client, the subscription
//! and the parts of the request they may change.

use std::net::IpAddr;

use hyper::{
    HeaderMap, Method,
    header::{HeaderName, HeaderValue},
};

/// The request as it goes through the inbound section.
pub struct Ctx<'a> {
    pub client_ip: IpAddr,
    /// The certificate the client presented on the TLS connection.
    pub client_cert: Option<&'a crate::client_cert::ClientCert>,
    pub method: &'a Method,
    pub headers: &'a mut HeaderMap,
    /// The path after the API prefix, as it will be appended to the
    /// backend's base path (`rewrite-uri` changes it).
    pub path: String,
    /// The path (API prefix included) and query the client sent, before
    /// any policy: `context.Request.OriginalUrl`.
    pub original: (&'a str, Option<&'a str>),
    pub query: Query,
    pub api: &'a str,
    pub operation: Option<&'a str>,
    /// URL template parameters of the matched operation.
    pub params: &'a [(String, String)],
    /// Id of the subscription whose key the request carried.
    pub subscription: Option<&'a str>,
    pub product: Option<&'a str>,
    /// Headers added to whatever response the client gets (rate-limit
    /// state, CORS).
    pub response_headers: ExtraHeaders,
    /// Claims of the token `validate-jwt` accepted, for key templates.
    pub jwt_claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// The backend `set-backend-service` chose instead of the API's.
    pub backend: Option<std::sync::Arc<crate::config::Backend>>,
    /// The client certificate `authentication-certificate` presents to it.
    pub client_identity: Option<crate::config::ClientIdentity>,
    /// `limit-concurrency` slots, held until the response headers.
    pub slots: Vec<super::concurrency::Slot>,
    /// Bandwidth quotas the call's body bytes are charged to when it ends.
    pub charges: Vec<super::limits::Charge>,
    /// Calls of limits with an increment condition, counted once the
    /// response is known.
    pub deferred: Vec<super::limits::Deferred>,
    /// The XDP program's allow/deny/ban state, when XDP is attached.
    pub xdp: Option<&'a super::XdpState>,
    /// Left by `cache-lookup` on a miss, for `cache-store`.
    pub cache: Option<Box<super::cache::Pending>>,
    /// Set by `set-variable`: `context.Variables` of policy expressions.
    pub variables: edgegw_policy_expr::Variables<'static>,
    /// The method `set-method` sends to the backend.
    pub set_method: Option<Method>,
    /// The request body, for `set-body` and `find-and-replace`.
    pub body: super::body::RequestBody<'a>,
    /// What `trace` policies wrote.
    pub traces: Vec<super::trace::Event>,
    /// The call's language-model tokens, charged and counted once its
    /// answer reports them (`llm-token-limit`, `llm-emit-token-metric`).
    pub tokens: Option<Box<super::tokens::Meter>>,
}

impl Ctx<'_> {
    /// The method as the backend will get it: after `set-method`, what
    /// `context.Request.Method` reads, as in APIM.
    pub fn current_method(&self) -> &Method {
        self.set_method.as_ref().unwrap_or(self.method)
    }
}

#[cfg(test)]
impl<'a> Ctx<'a> {
    /// A request from 10.0.0.1 to API "a", path "/", nothing else set;
    /// unit tests override fields with `Ctx { .., ..Ctx::test(..) }`.
    pub fn test(method: &'a Method, headers: &'a mut HeaderMap) -> Ctx<'a> {
        Ctx {
            client_ip: "10.0.0.1".parse().unwrap(),
            client_cert: None,
            method,
            headers,
            path: "/".into(),
            original: ("/a/", None),
            query: Query::default(),
            api: "a",
            operation: None,
            params: &[],
            subscription: None,
            product: None,
            response_headers: ExtraHeaders::default(),
            jwt_claims: None,
            backend: None,
            client_identity: None,
            slots: Vec::new(),
            charges: Vec::new(),
            deferred: Vec::new(),
            xdp: None,
            cache: None,
            variables: Default::default(),
            set_method: None,
            body: Default::default(),
            traces: Vec::new(),
            tokens: None,
        }
    }
}

/// A query string as raw `name[=value]` pairs, kept in order and encoding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query(pub Vec<(String, Option<String>)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (p.to_string(), None),
            })
            .collect();
        Query(pairs)
    }

    /// The decoded value of the first parameter called `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, _)| percent_decode(n) == name)
            .map(|(_, v)| percent_decode(v.as_deref().unwrap_or_default()))
    }

    /// Removes every parameter called `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| percent_decode(n) != name);
    }

    /// `?a=1&b` or "" when empty.
    pub fn to_suffix(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let mut out = String::from("?");
        for (i, (n, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(n);
            if let Some(v) = v {
                out.push('=');
                out.push_str(v);
            }
        }
        out
    }
}

/// Decodes `%XX` and `+`; invalid escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a value for a query string.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A header value of `parts` end to end, in one allocation of its exact
/// size (which `Bytes` then takes over without another).
pub fn joined(parts: &[&[u8]]) -> Option<HeaderValue> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.extend_from_slice(part);
    }
    HeaderValue::from_maybe_shared(bytes::Bytes::from(out)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trip_get_and_remove() {
        let mut q = Query::parse(Some("a=1&subscription-key=k%2B1&flag&a=2"));
        assert_eq!(q.get("subscription-key").as_deref(), Some("k+1"));
        assert_eq!(q.get("flag").as_deref(), Some(""));
        q.remove("subscription-key");
        assert_eq!(q.to_suffix(), "?a=1&flag&a=2");
        assert_eq!(Query::parse(None).to_suffix(), "");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn extra_headers_are_appended_every_value_kept() {
        let mut map = HeaderMap::new();
        map.append("ratelimit", "\"a\";r=1;t=2".parse().unwrap());
        map.append("ratelimit", "\"b\";r=3;t=4".parse().unwrap());
        map.append("x-one", "1".parse().unwrap());
        let mut extra = ExtraHeaders::default();
        extra.extend(map);
        let mut headers = HeaderMap::new();
        headers.append("ratelimit", "\"backend\"".parse().unwrap());
        extra.append_to(&mut headers);
        let values: Vec<_> = headers.get_all("ratelimit").iter().collect();
        assert_eq!(values, ["\"backend\"", "\"a\";r=1;t=2", "\"b\";r=3;t=4"]);
        assert_eq!(headers["x-one"], "1");
    }
}

/// Headers policies add to whatever response the client gets, in order. A
/// list, not a map: they are only added here, and appended to the response
/// once (no hashing, no table per request).
#[derive(Debug, Default)]
pub struct ExtraHeaders(Vec<(HeaderName, HeaderValue)>);

impl ExtraHeaders {
    pub fn append(&mut self, name: HeaderName, value: HeaderValue) {
        self.0.push((name, value));
    }

    /// Adds every value of `map`, in its order.
    pub fn extend(&mut self, map: HeaderMap) {
        // The iterator names a header once, before its first value.
        let mut name = None;
        for (next, value) in map {
            if next.is_some() {
                name = next;
            }
            if let Some(name) = &name {
                self.0.push((name.clone(), value));
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.0.iter().map(|(name, value)| (name, value))
    }

    /// Appends them all to `headers` (moved, not cloned).
    pub fn append_to(self, headers: &mut HeaderMap) {
        for (name, value) in self.0 {
            headers.append(name, value);
        }
    }

    /// As a map, for tests to read.
    #[cfg(test)]
    pub fn to_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in &self.0 {
            map.append(name.clone(), value.clone());
        }
        map
    }
}
