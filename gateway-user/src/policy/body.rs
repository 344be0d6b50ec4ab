//! `set-body` and `find-and-replace`: the request body (inbound) and the
//! response body (outbound, on-error). Bodies stream through the gateway;
//! one is read into memory only when one of these policies needs it, up
//! to the gateway's body limit (`[limits] max_body_bytes`).

use std::{borrow::Cow, sync::Mutex};

use bytes::Bytes;
use gateway_model::policy::{
    expr::Text,
    find_and_replace::FindAndReplaceSpec,
    set_body::{Body, SetBodySpec},
};
use http_body_util::BodyExt;
use hyper::{HeaderMap, StatusCode};

use super::{
    context::Ctx,
    expr::{self, Facts, Later},
    respond::{Answer, refusal},
};

/// The client's body as the inbound section sees it.
pub type BodyStream<'a> =
    &'a mut (dyn hyper::body::Body<Data = Bytes, Error = crate::BoxError> + Send + Unpin);

/// The request body for the inbound policies that read or replace it:
/// the client's stream, read once when a policy needs it.
#[derive(Default)]
pub struct RequestBody<'a> {
    /// Not read yet (a mutex only to keep `Ctx` shareable; never
    /// contended).
    stream: Mutex<Option<BodyStream<'a>>>,
    limit: usize,
    /// Read or replaced: what the backend gets in place of the stream.
    pub bytes: Option<Bytes>,
}

impl<'a> RequestBody<'a> {
    /// `stream` is `None` for a request without a body.
    pub fn new(stream: Option<BodyStream<'a>>, limit: u64) -> Self {
        RequestBody {
            stream: Mutex::new(stream),
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            bytes: None,
        }
    }

    /// Reads the client's body (once); a body over the limit or broken
    /// off is the answer.
    pub async fn read(&mut self) -> Result<(), Answer> {
        let stream = self
            .stream
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(stream) = stream else {
            if self.bytes.is_none() {
                self.bytes = Some(Bytes::new());
            }
            return Ok(());
        };
        match read_limited(stream, self.limit).await {
            Ok(bytes) => {
                self.bytes = Some(bytes);
                Ok(())
            }
            Err(Unread::TooLarge) => Err(refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "Request body is larger than the {} bytes a body policy may read.",
                    self.limit
                ),
            )),
            Err(Unread::Failed) => Err(refusal(
                StatusCode::BAD_REQUEST,
                "The request body could not be read.",
            )),
        }
    }

    /// Replaces the body: the client's stream, if unread, is not sent.
    pub fn replace(&mut self, bytes: Bytes) {
        *self.stream.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
        self.bytes = Some(bytes);
    }
}

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum Unread {
    /// Over the limit.
    TooLarge,
    /// The stream failed.
    Failed,
}

/// Reads a body whole, up to `limit` bytes. (By frames: a `Limited`
/// collect would carry its error conversion's bound into the request's
/// future, whose Send check cannot prove it.)
pub async fn read_limited<B>(mut body: B, limit: usize) -> Result<Bytes, Unread>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Unread::Failed)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(Unread::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// Whether a policy of these needs the response body read.
pub fn reads_response(spec: &super::Policy) -> bool {
    match spec {
        super::Policy::SetBody(b) => b.reads_body,
        super::Policy::Return(r) => r.reads_body(),
        super::Policy::FindAndReplace(_) => true,
        super::Policy::Choose(c) => c.branches().any(|b| b.iter().any(|p| reads_response(p))),
        _ => false,
    }
}

/// `set-body` in inbound.
pub async fn set_request(spec: &SetBodySpec, ctx: &mut Ctx<'_>) -> Option<Answer> {
    if spec.reads_body
        && let Err(answer) = ctx.body.read().await
    {
        return Some(answer);
    }
    match make(spec, &Facts::of(ctx), None) {
        Ok(bytes) => {
            ctx.body.replace(bytes);
            None
        }
        Err(answer) => Some(*answer),
    }
}

/// `find-and-replace` in inbound.
pub async fn replace_request(spec: &FindAndReplaceSpec, ctx: &mut Ctx<'_>) -> Option<Answer> {
    if let Err(answer) = ctx.body.read().await {
        return Some(answer);
    }
    let current = ctx.body.bytes.clone().unwrap_or_default();
    match replace(spec, &current, &Facts::of(ctx), None) {
        Ok(Some(bytes)) => {
            ctx.body.replace(bytes);
            None
        }
        Ok(None) => None,
        Err(answer) => Some(*answer),
    }
}

/// The new body; `later` in outbound and on-error (its `body` is the
/// response's as it is now).
pub fn make(spec: &SetBodySpec, facts: &Facts, later: Option<Later>) -> Result<Bytes, Box<Answer>> {
    match &spec.body {
        Body::Literal(l) => Ok(Bytes::from(l.clone())),
        Body::Expr(e) => expr::eval_with(e, facts, later, |v| Bytes::from(v.to_string()))
            .map_err(|err| Box::new(expr::failure("set-body", e, &err))),
        Body::Liquid(t) => t
            .render(&super::liquid::globals(facts, later))
            .map(Bytes::from)
            .map_err(|err| Box::new(super::liquid::failure(&err))),
    }
}

/// `body` with every `from` replaced by `to`; `None` when it has none.
pub fn replace(
    spec: &FindAndReplaceSpec,
    body: &[u8],
    facts: &Facts,
    later: Option<Later>,
) -> Result<Option<Bytes>, Box<Answer>> {
    let from = text(&spec.from, facts, later)?;
    let to = text(&spec.to, facts, later)?;
    let Ok(body) = std::str::from_utf8(body) else {
        // Not text: its bytes are searched as they are.
        let from = from.as_bytes();
        if from.is_empty() || !body.windows(from.len()).any(|w| w == from) {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(body.len());
        let mut i = 0;
        while i < body.len() {
            if body[i..].starts_with(from) {
                out.extend_from_slice(to.as_bytes());
                i += from.len();
            } else {
                out.push(body[i]);
                i += 1;
            }
        }
        return Ok(Some(Bytes::from(out)));
    };
    if from.is_empty() || !body.contains(&*from) {
        return Ok(None);
    }
    Ok(Some(Bytes::from(body.replace(&*from, &to))))
}

fn text<'t>(t: &'t Text, facts: &Facts, later: Option<Later>) -> Result<Cow<'t, str>, Box<Answer>> {
    match t {
        Text::Literal(l) => Ok(Cow::Borrowed(l)),
        Text::Expr(e) => expr::eval_with(e, facts, later, |v| Cow::Owned(v.to_string()))
            .map_err(|err| Box::new(expr::failure("find-and-replace", e, &err))),
    }
}

/// After a body change: the length the client or backend is told.
pub fn set_length(headers: &mut HeaderMap, len: usize) {
    headers.remove(hyper::header::TRANSFER_ENCODING);
    headers.insert(hyper::header::CONTENT_LENGTH, len.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<T>(parse: fn(serde_yaml::Value) -> Result<T, String>, s: &str) -> T {
        parse(serde_yaml::from_str(s).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn request_bodies_are_read_within_the_limit_and_replaced() {
        let method = hyper::Method::POST;
        let mut headers = HeaderMap::new();
        let mut stream = http_body_util::Full::new(Bytes::from("sad and sad"))
            .map_err(|never| -> crate::BoxError { match never {} });
        let mut ctx = Ctx {
            body: RequestBody::new(Some(&mut stream), 64),
            ..Ctx::test(&method, &mut headers)
        };
        let f = spec(FindAndReplaceSpec::parse, "{from: sad, to: glad}");
        assert!(replace_request(&f, &mut ctx).await.is_none());
        assert_eq!(ctx.body.bytes.as_deref(), Some(&b"glad and glad"[..]));
        let b = spec(
            SetBodySpec::parse,
            "{value: '@(context.Request.Body.As<string>().ToUpper())'}",
        );
        assert!(set_request(&b, &mut ctx).await.is_none());
        assert_eq!(ctx.body.bytes.as_deref(), Some(&b"GLAD AND GLAD"[..]));

        // Over the limit: 413, nothing forwarded.
        let mut big = http_body_util::Full::new(Bytes::from(vec![b'x'; 65]))
            .map_err(|never| -> crate::BoxError { match never {} });
        let mut headers = HeaderMap::new();
        let mut ctx = Ctx {
            body: RequestBody::new(Some(&mut big), 64),
            ..Ctx::test(&method, &mut headers)
        };
        let answer = replace_request(&f, &mut ctx).await.unwrap();
        assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn binary_bodies_are_searched_as_bytes() {
        let method = hyper::Method::POST;
        let mut headers = HeaderMap::new();
        let ctx = Ctx::test(&method, &mut headers);
        let f = spec(FindAndReplaceSpec::parse, "{from: ab, to: ''}");
        let out = replace(&f, b"\xffab\xfeab", &Facts::of(&ctx), None).unwrap();
        assert_eq!(out.as_deref(), Some(&b"\xff\xfe"[..]));
        assert_eq!(replace(&f, b"none", &Facts::of(&ctx), None).unwrap(), None);
    }

    #[test]
    fn liquid_sees_the_request_and_the_body() {
        let method = hyper::Method::POST;
        let mut headers = HeaderMap::new();
        headers.insert("x-tier", "gold".parse().unwrap());
        let mut ctx = Ctx::test(&method, &mut headers);
        ctx.query = super::super::context::Query::parse(Some("q=a%20b"));
        ctx.body
            .replace(Bytes::from(r#"{"user": {"name": "ada"}, "n": 2}"#));
        let b = spec(
            SetBodySpec::parse,
            "{template: liquid, value: '{{body.user.name}}/{{body.n | plus: 1}}/{{context.Request.Headers[\"X-Tier\"]}}/{{context.Request.Headers.x-tier}}/{{context.Request.Url.Query.q}}/{{context.Request.Method}}/{{context.Api.Name}}'}",
        );
        let out = make(&b, &Facts::of(&ctx), None).unwrap();
        assert_eq!(out, "ada/3/gold/gold/a b/POST/a");
    }
}
