//! `cors`: answers preflight requests (OPTIONS with `Origin` and
//! `Access-Control-Request-Method`) itself and adds the CORS headers to
//! the responses of allowed origins.

use hyper::{
    HeaderMap, Method, Response, StatusCode,
    header::{self, HeaderValue},
};
use serde::Deserialize;
use serde_yaml::Value;

use super::context::Ctx;
use crate::proxy::ProxyBody;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Origins allowed ("*" for any).
    allowed_origins: Vec<String>,
    /// Methods allowed in preflight (default GET, POST).
    #[serde(default)]
    allowed_methods: Vec<String>,
    /// Request headers allowed in preflight ("*" for any).
    #[serde(default)]
    allowed_headers: Vec<String>,
    /// Response headers the browser may read.
    #[serde(default)]
    expose_headers: Vec<String>,
    /// Whether credentials are allowed (then "*" origins echo the origin).
    #[serde(default)]
    allow_credentials: bool,
    /// Seconds the browser may cache a preflight answer.
    #[serde(default)]
    preflight_result_max_age: Option<u64>,
}

#[derive(Debug)]
pub struct Cors {
    any_origin: bool,
    origins: Vec<String>,
    methods: Vec<Method>,
    any_header: bool,
    headers: Vec<String>,
    expose: Vec<String>,
    credentials: bool,
    max_age: Option<u64>,
}

impl Cors {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = serde_yaml::from_value(args).map_err(|e| e.to_string())?;
        if f.allowed_origins.is_empty() {
            return Err("allowed_origins is empty; list origins or \"*\"".into());
        }
        let methods = if f.allowed_methods.is_empty() {
            vec![Method::GET, Method::POST]
        } else {
            f.allowed_methods
                .iter()
                .map(|m| {
                    Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                        .map_err(|_| format!("\"{m}\" is not an HTTP method"))
                })
                .collect::<Result<_, _>>()?
        };
        for value in f.expose_headers.iter().chain(&f.allowed_headers) {
            HeaderValue::from_str(value)
                .map_err(|_| format!("\"{value}\" is not a header name"))?;
        }
        Ok(Cors {
            any_origin: f.allowed_origins.iter().any(|o| o == "*"),
            origins: f.allowed_origins,
            methods,
            any_header: f.allowed_headers.iter().any(|h| h == "*"),
            headers: f.allowed_headers,
            expose: f.expose_headers,
            credentials: f.allow_credentials,
            max_age: f.preflight_result_max_age,
        })
    }

    /// Answers a preflight; adds the response headers to other requests
    /// from an allowed origin.
    pub fn apply(&self, ctx: &mut Ctx) -> Option<Response<ProxyBody>> {
        let origin = ctx.headers.get(header::ORIGIN)?.clone();
        let allowed = self.any_origin
            || origin
                .to_str()
                .is_ok_and(|o| self.origins.iter().any(|a| a == o));
        let preflight = ctx.method == Method::OPTIONS
            && ctx
                .headers
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let mut out = HeaderMap::new();
        if allowed {
            let allow_origin = if self.any_origin && !self.credentials {
                HeaderValue::from_static("*")
            } else {
                origin
            };
            out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
            if !self.any_origin || self.credentials {
                out.insert(header::VARY, HeaderValue::from_static("Origin"));
            }
            if self.credentials {
                out.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
        }
        if !preflight {
            if allowed && !self.expose.is_empty() {
                insert_list(
                    &mut out,
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    &self.expose,
                );
            }
            ctx.response_headers.extend(out);
            return None;
        }
        let method_ok = ctx
            .headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .is_some_and(|m| self.methods.contains(&m));
        if allowed && method_ok {
            let methods: Vec<String> = self.methods.iter().map(|m| m.to_string()).collect();
            insert_list(&mut out, header::ACCESS_CONTROL_ALLOW_METHODS, &methods);
            if self.any_header {
                if let Some(h) = ctx.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                    out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone());
                }
            } else if !self.headers.is_empty() {
                insert_list(
                    &mut out,
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    &self.headers,
                );
            }
            if let Some(age) = self.max_age {
                out.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
            }
        } else {
            // A refused preflight carries no CORS headers: the browser blocks.
            out.clear();
        }
        let mut response =
            Response::new(super::respond::json_error(StatusCode::OK, "").into_body());
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
        let cors = Cors::parse(serde_yaml::from_str(args).unwrap()).unwrap();
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
