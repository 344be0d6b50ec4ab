//! `send-request` (inbound): a request of the policy's own, its answer
//! kept whole in a policy variable (`IResponse` in expressions); with
//! `one_way` sent in the background. The spec and its semantics:
//! `gateway_model::policy::send_request`.

use std::sync::Arc;

use bytes::Bytes;
use edgegw_policy_expr::{KeptResponse as Kept, Value};
use gateway_model::policy::{
    expr::Text,
    send_request::{SendRequestSpec, check_url},
};
use http_body_util::Full;
use hyper::{HeaderMap, Method, StatusCode, header};

use super::{
    body,
    context::Ctx,
    expr::{self, Facts, Failed},
    fetch,
    pipeline::method_of,
    respond::{Answer, refusal},
    set_header::SetHeader,
};

const POLICY: &str = "send-request";
/// The largest answer kept in a variable.
const MAX_ANSWER: usize = 8 << 20;

#[derive(Debug)]
pub struct SendRequest {
    spec: SendRequestSpec,
    /// A literal URL, parsed once (checked when the spec was loaded).
    url: Option<hyper::Uri>,
    headers: Vec<SetHeader>,
    /// `authentication-managed-identity` inside: the node's token.
    identity: Option<super::managed_identity::ManagedIdentity>,
}

/// Why the request was not sent or not answered.
enum Failure {
    /// A policy expression failed: its own answer.
    Expression(Box<Answer>),
    /// The URL, the connection or the answer: APIM's reason, and what.
    Request(&'static str, String),
}

impl SendRequest {
    pub fn new(
        spec: &SendRequestSpec,
        identity: Option<super::managed_identity::ManagedIdentity>,
    ) -> Self {
        SendRequest {
            identity,
            url: match &spec.url {
                Text::Literal(u) => check_url(u).ok(),
                Text::Expr(_) => None,
            },
            headers: spec.headers.iter().map(SetHeader::new).collect(),
            spec: spec.clone(),
        }
    }

    pub async fn run(&self, ctx: &mut Ctx<'_>) -> Option<Answer> {
        let reads_body = self.spec.copy || self.spec.body.as_ref().is_some_and(|b| b.reads_body);
        if reads_body && let Err(answer) = ctx.body.read().await {
            return Some(answer);
        }
        let mut request = match self.request(ctx) {
            Ok(r) => r,
            Err(Failure::Expression(answer)) => return Some(*answer),
            Err(Failure::Request(reason, why)) => return self.failed(ctx, reason, why),
        };
        if let Some(identity) = &self.identity
            && let Err(why) = identity.authorize(request.headers_mut()).await
        {
            return self.failed(ctx, "TokenAcquisitionFailure", why);
        }
        let url = request.uri().to_string();
        if self.spec.one_way {
            let timeout = self.spec.timeout;
            tokio::spawn(async move {
                if let Err(why) = fetch::send(request, timeout, MAX_ANSWER).await {
                    tracing::warn!(policy = "send-one-way-request", url, "{why}");
                }
            });
            return None;
        }
        match fetch::send(request, self.spec.timeout, MAX_ANSWER).await {
            Ok(answer) => {
                if let Some(name) = &self.spec.variable {
                    ctx.variables
                        .insert(name.clone(), Value::Response(Arc::new(kept(answer))));
                }
                None
            }
            Err(why) => self.failed(ctx, "RequestFailed", format!("{url}: {why}")),
        }
    }

    /// The request to send, made from the client's (`copy`) or from
    /// nothing, then the URL, method, headers and body the spec gives.
    fn request(&self, ctx: &Ctx) -> Result<hyper::Request<Full<Bytes>>, Failure> {
        let facts = Facts::of(ctx);
        let uri = match (&self.url, &self.spec.url) {
            (Some(uri), _) => uri.clone(),
            (None, Text::Expr(e)) => {
                let url = expr::text(e, ctx)
                    .map_err(|err| Failure::Expression(Box::new(expr::failure(POLICY, e, &err))))?;
                check_url(&url).map_err(|why| Failure::Request("InvalidUrl", why))?
            }
            (None, Text::Literal(u)) => {
                check_url(u).map_err(|why| Failure::Request("InvalidUrl", why))?
            }
        };
        let method = match &self.spec.method {
            Some(spec) => method_of(spec, ctx, POLICY).map_err(Failure::Expression)?,
            None if self.spec.copy => ctx.current_method().clone(),
            None => Method::GET,
        };
        let mut headers = if self.spec.copy {
            copied(ctx.headers)
        } else {
            HeaderMap::new()
        };
        for h in &self.headers {
            let value = h.value_with(&facts, None).map_err(Failure::Expression)?;
            h.set(&mut headers, value.as_ref());
        }
        let body = match &self.spec.body {
            Some(spec) => body::make(spec, &facts, None).map_err(Failure::Expression)?,
            None if self.spec.copy => ctx.body.bytes.clone().unwrap_or_default(),
            None => Bytes::new(),
        };
        let mut request = hyper::Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        Ok(request)
    }

    /// A failed request: on to on-error with `context.LastError` filled,
    /// or (`ignore_error`) the variable null and the section goes on.
    fn failed(&self, ctx: &mut Ctx, reason: &'static str, why: String) -> Option<Answer> {
        tracing::warn!(policy = POLICY, reason, "{why}");
        if self.spec.ignore_error {
            if let Some(name) = &self.spec.variable {
                ctx.variables.insert(name.clone(), Value::Null);
            }
            return None;
        }
        let mut answer = refusal(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error");
        answer.extensions_mut().insert(Failed {
            source: POLICY,
            reason,
            message: why,
        });
        Some(answer)
    }
}

/// The client's headers for a copy: not those of its own connection or
/// framing (the new request has its own).
fn copied(client: &HeaderMap) -> HeaderMap {
    let mut headers = client.clone();
    for name in [
        header::HOST,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
        header::TE,
        header::UPGRADE,
        header::EXPECT,
    ] {
        headers.remove(name);
    }
    headers
}

/// An answer as a variable keeps it.
fn kept(answer: hyper::Response<Bytes>) -> Kept {
    let (parts, body) = answer.into_parts();
    Kept {
        status: i32::from(parts.status.as_u16()),
        reason: parts
            .status
            .canonical_reason()
            .unwrap_or_default()
            .to_string(),
        headers: parts.headers,
        body: body.to_vec(),
    }
}
