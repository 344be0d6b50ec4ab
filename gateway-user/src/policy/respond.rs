//! What the gateway answers in place of the backend, and the
//! `return-response` / `mock-response` / `set-status` policies.
//!
//! Policies answer with plain data, an `Answer` (status, headers, bytes);
//! they never see the proxy's streaming body type. The proxy turns an
//! answer into its response in one place (`proxy::respond::answer`).

use bytes::Bytes;
use gateway_model::policy::respond::ReturnResponseSpec;
use hyper::{
    HeaderMap, Response, StatusCode,
    header::{self, HeaderValue},
    http::response::Parts,
};

/// A complete response made by the gateway or a policy.
pub type Answer = Response<Bytes>;

/// Tags a refusal (status 400 or more) with the policy that made it, for
/// the access log and the request's span (a response extension: it never
/// goes on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefusedBy(pub &'static str);

/// A refusal in the JSON shape API-management users know:
/// `{"statusCode": N, "message": "..."}`. Every error the gateway answers,
/// its own and its policies', has this shape.
pub fn refusal(status: StatusCode, message: &str) -> Answer {
    let body = serde_json::json!({ "statusCode": status.as_u16(), "message": message }).to_string();
    build(status, "application/json", body.into(), &HeaderMap::new())
}

fn build(status: StatusCode, content_type: &str, body: Bytes, headers: &HeaderMap) -> Answer {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().extend(headers.clone());
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
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
    pub fn new(spec: &ReturnResponseSpec) -> Self {
        ReturnResponse {
            status: spec.status,
            content_type: spec.content_type.clone(),
            body: Bytes::from(spec.body.clone()),
            headers: spec.headers.clone(),
        }
    }

    pub fn response(&self) -> Answer {
        build(
            self.status,
            &self.content_type,
            self.body.clone(),
            &self.headers,
        )
    }
}

/// `set-status`: changes the status of the response.
#[derive(Debug)]
pub struct SetStatus(pub StatusCode);

impl SetStatus {
    pub fn apply(&self, parts: &mut Parts) {
        parts.status = self.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> serde_yaml::Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn return_response_builds_the_configured_answer() {
        let spec = ReturnResponseSpec::parse(yaml(
            "{status_code: 418, content_type: text/plain, body: tea, headers: {x-a: b}}",
        ))
        .unwrap();
        let r = ReturnResponse::new(&spec).response();
        assert_eq!(r.status(), 418);
        assert_eq!(r.headers()["content-type"], "text/plain");
        assert_eq!(r.headers()["x-a"], "b");
    }

    #[test]
    fn set_status_changes_the_status() {
        let (mut parts, _) = Response::new(()).into_parts();
        SetStatus(StatusCode::ACCEPTED).apply(&mut parts);
        assert_eq!(parts.status, 202);
    }
}
