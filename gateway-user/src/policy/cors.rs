//! `cors`: answers preflight requests (OPTIONS with `Origin` and
//! `Access-Control-Request-Method`) itself and adds the CORS headers to
//! the responses of allowed origins.

use bytes::Bytes;
use hyper::{
    HeaderMap, Method, Response,
    header::{self, HeaderValue},
};

use gateway_model::policy::cors::CorsSpec;

use super::context::Ctx;

#[derive(Debug)]
pub struct Cors(CorsSpec);

impl Cors {
    pub fn new(spec: &CorsSpec) -> Self {
        Cors(spec.clone())
    }

    /// Answers a preflight; adds the response headers to other requests
    /// from an allowed origin.
    pub fn apply(&self, ctx: &mut Ctx) -> Option<Response<Bytes>> {
        let spec = &self.0;
        let origin = ctx.headers.get(header::ORIGIN)?.clone();
        let allowed = spec.any_origin
            || origin
                .to_str()
                .is_ok_and(|o| spec.origins.iter().any(|a| a == o));
        let preflight = ctx.method == Method::OPTIONS
            && ctx
                .headers
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let mut out = HeaderMap::new();
        if allowed {
            let allow_origin = if spec.any_origin && !spec.credentials {
                HeaderValue::from_static("*")
            } else {
                origin
            };
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
            if !spec.any_origin || spec.credentials {
                out.insert(header::VARY, HeaderValue::from_static("Origin"));
            }
            if spec.credentials {
                out.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
        }
        if !preflight {
            if allowed && !spec.expose.is_empty() {
                insert_list(
                    &mut out,
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    &spec.expose,
                );
            }
            ctx.response_headers.extend(out);
            return None;
        }
        let method_ok = ctx
            .headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .is_some_and(|m| spec.methods.contains(&m));
        if allowed && method_ok {
            let methods: Vec<String> = spec.methods.iter().map(|m| m.to_string()).collect();
            insert_list(&mut out, header::ACCESS_CONTROL_ALLOW_METHODS, &methods);
            if spec.any_header {
                if let Some(h) = ctx.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                    out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone());
                }
            } else if !spec.headers.is_empty() {
                insert_list(
                    &mut out,
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    &spec.headers,
                );
            }
            if let Some(age) = spec.max_age {
                out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
            }
        } else {
            // A refused preflight carries no CORS headers: the browser blocks.
            out.clear();
        }
        let mut response = Response::new(Bytes::new());
        *response.headers_mut() = out;
        Some(response)
    }
}

fn insert_list(headers: &mut HeaderMap, name: header::HeaderName, items: &[String]) {
    if let Ok(v) = HeaderValue::from_str(&items.join(", ")) {
        headers.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &str, method: Method, headers: &[(&str, &str)]) -> (Option<u16>, HeaderMap) {
        let cors = Cors::new(&CorsSpec::parse(serde_yaml::from_str(args).unwrap()).unwrap());
        let mut h = HeaderMap::new();
        for (n, v) in headers {
            h.insert(
                header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let mut ctx = Ctx::test(&method, &mut h);
        let r = cors.apply(&mut ctx);
        match r {
            Some(r) => (Some(r.status().as_u16()), r.headers().clone()),
            None => (None, ctx.response_headers.to_map()),
        }
    }

    const ARGS: &str = "{allowed_origins: ['https://app.example'], allowed_methods: [GET, PUT], allowed_headers: [x-a], expose_headers: [x-b], preflight_result_max_age: 300}";

    #[test]
    fn preflight_is_answered_for_allowed_origins_only() {
        let (status, h) = run(
            ARGS,
            Method::OPTIONS,
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "PUT"),
            ],
        );
        assert_eq!(status, Some(200));
        assert_eq!(h["access-control-allow-origin"], "https://app.example");
        assert_eq!(h["access-control-allow-methods"], "GET, PUT");
        assert_eq!(h["access-control-allow-headers"], "x-a");
        assert_eq!(h["access-control-max-age"], "300");
        let (status, h) = run(
            ARGS,
            Method::OPTIONS,
            &[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "PUT"),
            ],
        );
        assert_eq!(status, Some(200));
        assert!(!h.contains_key("access-control-allow-origin"));
    }

    #[test]
    fn simple_requests_get_headers() {
        let (status, h) = run(ARGS, Method::GET, &[("origin", "https://app.example")]);
        assert_eq!(status, None);
        assert_eq!(h["access-control-allow-origin"], "https://app.example");
        assert_eq!(h["access-control-expose-headers"], "x-b");
        let (_, h) = run(ARGS, Method::GET, &[]);
        assert!(h.is_empty());
    }
}
