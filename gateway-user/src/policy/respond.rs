//! What the gateway answers in place of the backend, and the
//! `return-response` / `mock-response` / `set-status` policies.
//!
//! Policies answer with plain data, an `Answer` (status, headers, bytes);
//! they never see the proxy's streaming body type. The proxy turns an
//! answer into its response in one place (`proxy::respond::answer`).

use bytes::Bytes;
use gateway_model::policy::respond::ReturnResponseSpec;

use super::{
    context::Ctx,
    expr::{self, Facts, Later},
};
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
    spec: ReturnResponseSpec,
    /// The body as written, shared by every answer.
    body: Bytes,
}

impl ReturnResponse {
    pub fn new(spec: &ReturnResponseSpec) -> Self {
        ReturnResponse {
            spec: spec.clone(),
            body: Bytes::from(spec.body.clone()),
        }
    }

    pub fn uses_expressions(&self) -> bool {
        self.spec.uses_expressions()
    }

    /// Whether making the body reads the current body (the request's in
    /// inbound, the response's later).
    pub fn reads_body(&self) -> bool {
        self.spec.reads_body()
    }

    /// In inbound: the answer, its body and expressions made from the
    /// request (read first when the body needs it); a failed expression's
    /// answer instead.
    pub async fn run(&self, ctx: &mut Ctx<'_>) -> Answer {
        if !self.uses_expressions() {
            return self.response();
        }
        if self.reads_body()
            && let Err(answer) = ctx.body.read().await
        {
            return answer;
        }
        self.made(&Facts::of(ctx), None)
            .unwrap_or_else(|failed| *failed)
    }

    /// The answer with what expressions make, evaluated with `facts` (and
    /// in outbound and on-error the response as it is, `later`).
    pub fn made(&self, facts: &Facts, later: Option<Later>) -> Result<Answer, Box<Answer>> {
        let body = match &self.spec.made_body {
            Some(b) => super::body::make(b, facts, later)?,
            None => self.body.clone(),
        };
        let s = &self.spec;
        let mut answer = build(s.status, &s.content_type, body, &s.headers);
        for (name, e) in &self.spec.header_expressions {
            let failed = |err| Box::new(expr::failure("return-response", e, &err));
            let text = expr::eval_with(e, facts, later, |v| v.to_string()).map_err(failed)?;
            let value = HeaderValue::try_from(text)
                .map_err(|_| failed(expr::message(e, "the value is not valid in a header")))?;
            answer.headers_mut().insert(name.clone(), value);
        }
        Ok(answer)
    }

    /// The answer as written (no expressions).
    pub fn response(&self) -> Answer {
        let s = &self.spec;
        build(s.status, &s.content_type, self.body.clone(), &s.headers)
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
