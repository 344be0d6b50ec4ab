//! Responses the policies answer with: JSON errors in the shape the
//! proxy uses, and the `return-response` / `mock-response` / `set-status`
//! policies.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    HeaderMap, Response, StatusCode,
    header::{self, HeaderName, HeaderValue},
    http::response::Parts,
};
use serde::Deserialize;
use serde_yaml::Value;

use crate::proxy::ProxyBody;

/// `{"statusCode": N, "message": "..."}`.
pub fn json_error(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "statusCode": status.as_u16(), "message": message }).to_string();
    build(status, "application/json", body.into(), &HeaderMap::new())
}

fn build(
    status: StatusCode,
    content_type: &str,
    body: Bytes,
    headers: &HeaderMap,
) -> Response<ProxyBody> {
    let mut response = Response::new(Full::new(body).map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    response.headers_mut().extend(headers.clone());
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
}

pub fn status(code: u16) -> Result<StatusCode, String> {
    StatusCode::from_u16(code)
        .ok()
        .filter(|s| s.as_u16() >= 200)
        .ok_or_else(|| format!("status code {code} is not a final HTTP status (200-999)"))
}

pub fn headers(map: &std::collections::BTreeMap<String, String>) -> Result<HeaderMap, String> {
    let mut out = HeaderMap::new();
    for (name, value) in map {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("\"{name}\" is not a valid header name"))?;
        let v = HeaderValue::from_str(value)
            .map_err(|_| format!("header \"{name}\": value is not valid in a header"))?;
        out.append(n, v);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnFile {
    /// Status code (default 200).
    #[serde(default = "ok")]
    status_code: u16,
    /// Content-Type of the body.
    #[serde(default = "json")]
    content_type: String,
    /// The body.
    #[serde(default)]
    body: String,
    /// Extra response headers.
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
}

fn ok() -> u16 {
    200
}

fn json() -> String {
    "application/json".into()
}

/// `return-response` and `mock-response`: answer without the backend.
#[derive(Debug)]
pub struct ReturnResponse {
    status: StatusCode,
    content_type: String,
    body: Bytes,
    headers: HeaderMap,
}

impl ReturnResponse {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: ReturnFile = serde_yaml::from_value(args).map_err(|e| e.to_string())?;
        Ok(ReturnResponse {
            status: status(f.status_code)?,
            content_type: f.content_type,
            body: f.body.into(),
            headers: headers(&f.headers)?,
        })
    }

    pub fn response(&self) -> Response<ProxyBody> {
        build(
            self.status,
            &self.content_type,
            self.body.clone(),
            &self.headers,
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetStatusFile {
    /// The new status code.
    code: u16,
}

/// `set-status`: changes the status of the response.
#[derive(Debug)]
pub struct SetStatus(StatusCode);

impl SetStatus {
    pub fn parse(args: Value) -> Result<Self, String> {
        let f: SetStatusFile = serde_yaml::from_value(args).map_err(|e| e.to_string())?;
        Ok(SetStatus(status(f.code)?))
    }

    pub fn apply(&self, parts: &mut Parts) {
        parts.status = self.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn return_response_builds_the_configured_answer() {
        let r = ReturnResponse::parse(yaml(
            "{status_code: 418, content_type: text/plain, body: tea, headers: {x-a: b}}",
        ))
        .unwrap()
        .response();
        assert_eq!(r.status(), 418);
        assert_eq!(r.headers()["content-type"], "text/plain");
        assert_eq!(r.headers()["x-a"], "b");
        assert!(ReturnResponse::parse(yaml("{status_code: 99}")).is_err());
        assert!(ReturnResponse::parse(yaml("{statuscode: 200}")).is_err());
    }

    #[test]
    fn set_status_changes_the_status() {
        let (mut parts, _) = Response::new(()).into_parts();
        SetStatus::parse(yaml("{code: 202}"))
            .unwrap()
            .apply(&mut parts);
        assert_eq!(parts.status, 202);
    }
}
