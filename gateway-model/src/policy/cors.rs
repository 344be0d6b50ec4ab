//! `cors`: which origins, methods and headers cross-origin callers may use.

use http::{Method, header::HeaderValue};
use serde::Deserialize;
use serde_yaml::Value;

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsSpec {
    pub any_origin: bool,
    pub origins: Vec<String>,
    pub methods: Vec<Method>,
    pub any_header: bool,
    pub headers: Vec<String>,
    pub expose: Vec<String>,
    pub credentials: bool,
    pub max_age: Option<u64>,
}

impl CorsSpec {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: File = super::settings(args)?;
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
        Ok(CorsSpec {
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
}
